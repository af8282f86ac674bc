// Tensiometer WM-1 (Ortspuls demo device): Bodenwasserspannung (Watermark) / soil water tension (Watermark).
// Payload codec in the TTN Device Repository convention. fPort 1: measurement
// (water_tension; big-endian); fPort 2: status (battery in mV).
// water_tension: kPa.

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
  if (input.fPort === 2) {
    if (b.length < 2) {
      return {errors: ['status uplink: expected 2 bytes, got ' + b.length]};
    }
    return {data: {battery_voltage: u16(b, 0) / 1000}};
  }
  if (input.fPort !== 1) {
    return {errors: ['unknown fPort ' + input.fPort]};
  }
  if (b.length < 2) {
    return {errors: ['measurement: expected 2 bytes, got ' + b.length]};
  }
  return {
    data: {
      water_tension: u16(b, 0) / 10,
    }
  };
}
