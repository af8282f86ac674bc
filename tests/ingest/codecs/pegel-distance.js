// Ortspuls test codec: ultrasonic distance sensor above a stream (water level gauge).
// fPort 2: bytes 0-1 battery voltage in mV, bytes 2-3 distance in mm (0 = no echo).
// ECMAScript 5 only, the way many older vendor codecs are written.
function decodeUplink(input) {
  if (input.fPort !== 2) {
    return { errors: ["unknown FPort " + input.fPort] };
  }
  if (input.bytes.length < 4) {
    return { errors: ["payload too short: " + input.bytes.length + " bytes"] };
  }
  var battery = ((input.bytes[0] << 8) | input.bytes[1]) / 1000;
  var distance = (input.bytes[2] << 8) | input.bytes[3];
  var data = { battery: battery };
  var warnings = [];
  if (distance === 0) {
    data.distance_status = "Invalid Reading";
    warnings.push("no echo");
  } else {
    data.distance = distance;
  }
  return { data: data, warnings: warnings };
}
