// jit_fib spends its CPU time in fib, which V8 compiles (run with --perf-basic-prof so that
// V8 names its code in /tmp/perf-PID.map). Usage: node --perf-basic-prof jit_fib.js SECONDS
function fib(n) {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

function hot(seconds) {
  let sum = 0;
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) sum += fib(22);
  return sum;
}

console.log(hot(Number(process.argv[2] || 3)) > 0 ? "done" : "none");
