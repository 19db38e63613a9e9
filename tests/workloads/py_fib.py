# py_fib spends its CPU time in fib; with CPython 3.12's -X perf each Python function runs
# through a trampoline named in /tmp/perf-PID.map. Usage: python3 -X perf py_fib.py SECONDS
import sys
import time


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def hot(seconds):
    end = time.time() + seconds
    while time.time() < end:
        fib(20)


hot(float(sys.argv[1]))
print("done")
