// Ortspuls test codec that misbehaves on purpose, to test the codec limits.
// fPort 1: never returns (infinite loop)     fPort 2: allocates memory without end
// fPort 3: infinite recursion                 fPort 4: throws an exception
// other ports: a normal result.
function decodeUplink(input) {
  if (input.fPort === 1) {
    while (true) {}
  }
  if (input.fPort === 2) {
    var hoard = [];
    while (true) {
      hoard.push(new Array(100000).fill(input.fPort));
    }
  }
  if (input.fPort === 3) {
    var dive = function (n) { return dive(n + 1) + 1; };
    return { data: { depth: dive(0) } };
  }
  if (input.fPort === 4) {
    throw new Error("kaputt");
  }
  return { data: { value: input.bytes.length } };
}
