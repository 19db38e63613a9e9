// gocpu spends its CPU time in two known functions, main.hotA (~70%) and main.hotB (~30%),
// on two busy goroutines, while writing its own runtime/pprof CPU profile. Tests compare that
// profile, the ground truth, with the one rprof-bpf records over the same run.
//
// With LEAF given as "leaf", the workers call viaA (~70%) and viaB (~30%) instead, which
// both spend their time in one frameless leaf, spin: a profiler must unwind that leaf to
// tell them apart.
//
// Usage: gocpu PROFILE_PATH SECONDS [HZ [leaf]]
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"
)

var sink uint64

// hotA and hotB each run their own copy of the loop, so that each is the leaf of its own
// samples and its flat share is its share of the CPU time.
//
//go:noinline
func hotA(x uint64) uint64 {
	for i := 0; i < 20000; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

//go:noinline
func hotB(x uint64) uint64 {
	for i := 0; i < 20000; i++ {
		x = x*2862933555777941757 + 3037000493
	}
	return x
}

// spin is a frameless leaf (no locals, no calls: Go gives it no frame and pushes no frame
// pointer) shared by viaA and viaB, so only its caller tells their samples apart.
//
//go:noinline
func spin(x uint64) uint64 {
	for i := 0; i < 20000; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

//go:noinline
func viaA(x uint64) uint64 {
	return spin(x) + 1
}

//go:noinline
func viaB(x uint64) uint64 {
	return spin(x) + 2
}

// leafMode makes the workers call viaA and viaB instead of hotA and hotB.
var leafMode bool

// worker picks hotA with probability 0.7 from a private xorshift generator, so that the
// pattern is random rather than periodic and cannot alias with either profiler's clock.
//
//go:noinline
func worker(seed uint64, deadline time.Time, wg *sync.WaitGroup) {
	defer wg.Done()
	r := seed
	x := seed
	for time.Now().Before(deadline) {
		for i := 0; i < 8; i++ {
			r ^= r << 13
			r ^= r >> 7
			r ^= r << 17
			switch {
			case leafMode && r%10 < 7:
				x = viaA(x)
			case leafMode:
				x = viaB(x)
			case r%10 < 7:
				x = hotA(x)
			default:
				x = hotB(x)
			}
		}
	}
	sink += x
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: gocpu PROFILE_PATH SECONDS [HZ [leaf]]")
		os.Exit(2)
	}
	seconds, err := strconv.ParseFloat(os.Args[2], 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad SECONDS:", err)
		os.Exit(2)
	}
	hz := 100
	if len(os.Args) > 3 {
		if hz, err = strconv.Atoi(os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "bad HZ:", err)
			os.Exit(2)
		}
	}
	leafMode = len(os.Args) > 4 && os.Args[4] == "leaf"
	f, err := os.Create(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if hz != 100 {
		// StartCPUProfile asks for 100 Hz; a rate set before it wins (runtime prints a
		// harmless warning about it).
		runtime.SetCPUProfileRate(hz)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	deadline := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go worker(0x9e3779b97f4a7c15+uint64(i)*0x2545f4914f6cdd1d, deadline, &wg)
	}
	wg.Wait()
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("done", sink != 1)
}
