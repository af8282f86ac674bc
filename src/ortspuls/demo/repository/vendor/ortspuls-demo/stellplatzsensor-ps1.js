// Stellplatzsensor PS-1 (Ortspuls demo device): Bodensensor (Magnetfeld) für einen Stellplatz / in-ground magnetic sensor for one parking space.
// Payload codec in the TTN Device Repository convention. fPort 1: measurement
// (occupied; big-endian); fPort 2: status (battery in mV).
// occupied: true while a vehicle stands on the space.

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
  if (b.length < 1) {
    return {errors: ['measurement: expected 1 bytes, got ' + b.length]};
  }
  return {
    data: {
      occupied: (u8(b, 0) & 1) === 1,
    }
  };
}
