// Ortspuls test codec: soil moisture probe at a city tree, written with ES2015+ syntax
// (const/let, arrow functions, destructuring, default parameters, template literals, classes,
// optional chaining, exponent operator). Values come back as strings from toFixed, as some
// vendor codecs do.
// fPort 2: bytes 0-1 battery mV, 2-3 moisture (0.01 %), 4-5 soil temperature (0.01 °C, signed),
// 6-7 conductivity (µS/cm).
const u16 = (bytes, i) => (bytes[i] << 8) | bytes[i + 1];
const s16 = (bytes, i) => {
  const v = u16(bytes, i);
  return v > 0x7fff ? v - 0x10000 : v;
};

class Reading {
  constructor({ moisture, temperature, conductivity }, scale = 10 ** 2) {
    this.moisture = (moisture / scale).toFixed(2);
    this.temperature = (temperature / scale).toFixed(2);
    this.conductivity = conductivity;
  }
}

function decodeUplink({ bytes, fPort, variables = {} }) {
  if (fPort !== 2) {
    return { errors: [`unknown FPort ${fPort}`] };
  }
  const [b0, b1] = bytes;
  const reading = new Reading({
    moisture: u16(bytes, 2),
    temperature: s16(bytes, 4),
    conductivity: u16(bytes, 6),
  });
  const data = {
    Bat: ((b0 << 8) | b1) / 1000,
    water_SOIL: reading.moisture,
    temp_SOIL: reading.temperature,
    conduct_SOIL: reading.conductivity,
    ...(variables?.depth ? { depth_cm: Number(variables.depth) } : {}),
  };
  return { data };
}
