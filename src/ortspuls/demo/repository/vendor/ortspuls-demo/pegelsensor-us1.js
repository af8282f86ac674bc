// Pegelsensor US-1 (Ortspuls demo device): Ultraschall-Abstandssensor über dem Gewässer / ultrasonic distance sensor above the water.
// Payload codec in the TTN Device Repository convention. fPort 1: measurement
// (distance; big-endian); fPort 2: status (battery in mV).
// distance: from the sensor to the water surface in mm.

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
      distance: u16(b, 0),
    }
  };
}
