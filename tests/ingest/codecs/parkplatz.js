// Ortspuls test codec: in-ground parking space sensor.
// fPort 1: parking status, byte 0 bit 0 = occupied.
// fPort 2: heartbeat, byte 0 bit 0 = occupied, byte 1 = temperature (signed °C).
// fPort 3: startup, bytes 0-1 = firmware version (no measurements).
function decodeUplink(input) {
  var b = input.bytes;
  switch (input.fPort) {
    case 1:
      return { data: { type: "parking status", occupied: (b[0] & 1) === 1 } };
    case 2:
      return {
        data: {
          type: "heartbeat",
          occupied: (b[0] & 1) === 1,
          temperature: b[1] > 127 ? b[1] - 256 : b[1],
        },
      };
    case 3:
      return { data: { type: "startup", firmware: b[0] + "." + b[1] } };
    default:
      return { errors: ["unknown FPort " + input.fPort] };
  }
}
