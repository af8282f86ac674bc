// Wetterstation WS-4 (Ortspuls demo device): Temperatur, Feuchte, Wind und Niederschlag, solarbetrieben / temperature, humidity, wind and rain, solar powered.
// Payload codec in the TTN Device Repository convention. fPort 1: measurement
// (air_temperature, humidity, wind_speed, rain; big-endian); fPort 2: status (battery in mV).
// rain: mm in the interval (tipping bucket, 0.2 mm).

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
  if (b.length < 6) {
    return {errors: ['measurement: expected 6 bytes, got ' + b.length]};
  }
  return {
    data: {
      air_temperature: s16(b, 0) / 100,
      humidity: u8(b, 2) / 2,
      wind_speed: u16(b, 3) / 10,
      rain: u8(b, 5) / 5,
    }
  };
}
