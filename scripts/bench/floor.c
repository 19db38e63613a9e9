/*
 * Loads a BPF object (scripts/bench/floor.bpf.o), attaches its programs, keeps them attached for
 * SECONDS, and exits, which detaches them. Built against the libbpf that the libbpf-sys crate
 * compiles into target/, so it needs nothing more than rprof-bpf's own build:
 *
 *   cc -O2 -I LIBBPF_SYS_OUT/include floor.c LIBBPF_SYS_OUT/libbpf.a -lelf -lz -o floor
 *
 * Usage: floor OBJECT SECONDS
 */
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;

	if (argc != 3) {
		fprintf(stderr, "usage: floor OBJECT SECONDS\n");
		return 2;
	}
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "floor: cannot load %s\n", argv[1]);
		return 1;
	}
	bpf_object__for_each_program(prog, obj) {
		if (!bpf_program__attach(prog)) {
			fprintf(stderr, "floor: cannot attach %s\n", bpf_program__name(prog));
			return 1;
		}
	}
	sleep((unsigned int)atoi(argv[2]));
	return 0;
}
