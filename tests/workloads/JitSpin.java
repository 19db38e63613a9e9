// JitSpin spends its CPU time in fib, compiled by the JIT. It warms up for a second, prints
// "ready PID", then runs for SECONDS and prints "done". Usage: java JitSpin SECONDS
public class JitSpin {
    static long fib(int n) {
        return n < 2 ? n : fib(n - 1) + fib(n - 2);
    }

    static long hot(double seconds) {
        long sum = 0;
        long end = System.nanoTime() + (long) (seconds * 1e9);
        while (System.nanoTime() < end) {
            sum += fib(22);
        }
        return sum;
    }

    public static void main(String[] args) {
        hot(1.0);
        System.out.println("ready " + ProcessHandle.current().pid());
        System.out.flush();
        System.out.println(hot(Double.parseDouble(args[0])) > 0 ? "done" : "none");
    }
}
