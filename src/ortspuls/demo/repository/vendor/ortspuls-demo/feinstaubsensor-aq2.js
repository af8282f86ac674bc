// Feinstaubsensor AQ-2 (Ortspuls demo device): Feinstaub PM10 und PM2,5 (optisch) / particulate matter PM10 and PM2.5 (optical).
// Payload codec in the TTN Device Repository convention. fPort 1: measurement
// (pm10, pm2_5; big-endian).
// pm10, pm2_5: µg/m³.

function u8(b, i) {
  return b[i];
}

function u16(b, i) {
  return (b[i] << 8) | b[i + 1];
}

function s16(b, i) {
  var v = u16(b, i);
  return v & 0x8000 ? v - 0x10000 : v;
}

function decodeUplink(input) {
  var b = input.bytes;
  if (input.fPort !== 1) {
    return {errors: ['unknown fPort ' + input.fPort]};
  }
  if (b.length < 4) {
    return {errors: ['measurement: expected 4 bytes, got ' + b.length]};
  }
  return {
    data: {
      pm10: u16(b, 0) / 10,
      pm2_5: u16(b, 2) / 10,
    }
  };
}
