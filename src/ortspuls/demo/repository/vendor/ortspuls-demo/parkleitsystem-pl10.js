// Parkleitsystem-Knoten PL-10 (Ortspuls demo device): Meldet die freien Stellplätze eines Parkhauses / reports the free spaces of a car park.
// Payload codec in the TTN Device Repository convention. fPort 1: measurement
// (free; big-endian).
// free: free spaces.

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
      free: u16(b, 0),
    }
  };
}
