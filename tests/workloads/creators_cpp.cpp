// creators_cpp makes N threads with std::thread from via_std_thread (Usage: creators_cpp N),
// after 300 ms, then prints "done". Built -O2 without frame-pointer flags.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

__attribute__((noinline)) void via_std_thread(int n) {
    for (int i = 0; i < n; i++) {
        std::thread t([] {});
        t.join();
    }
}

int main(int argc, char **argv) {
    int n = argc > 1 ? std::atoi(argv[1]) : 4;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    via_std_thread(n);
    std::printf("done\n");
    return 0;
}
