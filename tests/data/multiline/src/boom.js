// Prints what Node.js programs print on failure: console.error of a caught
// Error, then an uncaught one.
function load(id) {
  if (id < 0) throw new RangeError(`negative id ${id}`);
  return `row${id}`;
}
function handle(id) {
  try {
    return load(id);
  } catch (e) {
    throw new Error(`cannot handle request ${id}`, { cause: e });
  }
}
for (let i = 0; i < 3; i++) {
  console.log(`info handled request ${i} -> ${handle(i)}`);
  try {
    handle(-i - 1);
  } catch (e) {
    console.log(e.stack);
  }
}
console.log("info shutting down");
null.boom();
