// Lärmsensor NS-1 (Ortspuls demo device): Schallpegelmesser Klasse 2, LAeq je 10 Minuten / class 2 sound level meter, LAeq per 10 minutes.
// Payload codec in the TTN Device Repository convention. fPort 1: measurement
// (laeq; big-endian).
// laeq: A-weighted equivalent level in dB.

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
      laeq: u16(b, 0) / 10,
    }
  };
}
