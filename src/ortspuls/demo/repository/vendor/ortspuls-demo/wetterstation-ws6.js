// Wetterstation WS-6 (Ortspuls demo device): Temperatur, Feuchte, Luftdruck, Wind und Niederschlag / temperature, humidity, pressure, wind and rain.
// Payload codec in the TTN Device Repository convention. fPort 1: measurement
// (air_temperature, humidity, pressure, wind_speed, wind_direction, rain; big-endian).
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
  if (input.fPort !== 1) {
    return {errors: ['unknown fPort ' + input.fPort]};
  }
  if (b.length < 10) {
    return {errors: ['measurement: expected 10 bytes, got ' + b.length]};
  }
  return {
    data: {
      air_temperature: s16(b, 0) / 100,
      humidity: u8(b, 2) / 2,
      pressure: u16(b, 3) / 10,
      wind_speed: u16(b, 5) / 10,
      wind_direction: u16(b, 7),
      rain: u8(b, 9) / 5,
    }
  };
}
