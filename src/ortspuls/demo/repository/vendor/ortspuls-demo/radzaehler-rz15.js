// Radzähler RZ-15 (Ortspuls demo device): Zählt Radfahrende je 15 Minuten (Induktionsschleife) / counts cyclists per 15 minutes (induction loop).
// Payload codec in the TTN Device Repository convention. fPort 1: measurement
// (count; big-endian).
// count: cyclists counted in the interval.

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
  if (b.length < 2) {
    return {errors: ['measurement: expected 2 bytes, got ' + b.length]};
  }
  return {
    data: {
      count: u16(b, 0),
    }
  };
}
