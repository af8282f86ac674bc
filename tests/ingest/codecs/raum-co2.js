// Ortspuls test codec: indoor CO2 sensor (school classroom) with a channel/type TLV payload:
//   01 75 <u8>      battery %          03 67 <s16 LE>  temperature 0.1 °C
//   04 68 <u8>      humidity 0.5 %     07 7D <u16 LE>  CO2 ppm
// with normalizeUplink to the Device Repository's normalized payload schema.
function readInt16LE(bytes, i) {
  var v = bytes[i] | (bytes[i + 1] << 8);
  return v > 0x7fff ? v - 0x10000 : v;
}

function decodeUplink(input) {
  var bytes = input.bytes;
  var data = {};
  for (var i = 0; i < bytes.length; ) {
    var channel = bytes[i++];
    var type = bytes[i++];
    if (channel === 0x01 && type === 0x75) {
      data.battery = bytes[i];
      i += 1;
    } else if (channel === 0x03 && type === 0x67) {
      data.temperature = readInt16LE(bytes, i) / 10;
      i += 2;
    } else if (channel === 0x04 && type === 0x68) {
      data.humidity = bytes[i] / 2;
      i += 1;
    } else if (channel === 0x07 && type === 0x7d) {
      data.co2 = bytes[i] | (bytes[i + 1] << 8);
      i += 2;
    } else {
      return { errors: ["unknown channel " + channel + " type " + type] };
    }
  }
  return { data: data };
}

function normalizeUplink(input) {
  var d = input.data;
  var air = {};
  if (d.temperature !== undefined) air.temperature = d.temperature;
  if (d.humidity !== undefined) air.relativeHumidity = d.humidity;
  if (d.co2 !== undefined) air.co2 = d.co2;
  return { data: { air: air } };
}
