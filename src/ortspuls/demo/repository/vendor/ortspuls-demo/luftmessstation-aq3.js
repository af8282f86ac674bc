// Luftmessstation AQ-3 (Ortspuls demo device): Feinstaub PM10 und PM2,5 (optisch) und NO₂ (elektrochemisch) / particulate matter and NO₂.
// Payload codec in the TTN Device Repository convention. fPort 1: measurement
// (pm10, pm2_5, no2; big-endian).
// pm10, pm2_5, no2: µg/m³.

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
  if (b.length < 6) {
    return {errors: ['measurement: expected 6 bytes, got ' + b.length]};
  }
  return {
    data: {
      pm10: u16(b, 0) / 10,
      pm2_5: u16(b, 2) / 10,
      no2: u16(b, 4) / 10,
    }
  };
}
