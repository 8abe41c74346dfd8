/* The floor of any socketmap server on this machine: a single-threaded C
 * responder that frames netstrings and answers every request with a fixed
 * reply, no lookup. postmap against it measures the Unix-socket round trip
 * (two process wake-ups per key) and nothing else.
 *
 * Usage: floor SOCKET_PATH   (serves until killed; prints "ready")
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char REPLY[] = "18:OK d1.test/kuser0/,";

static void serve(int c) {
  char buf[8192];
  size_t have = 0;
  for (;;) {
    ssize_t n = read(c, buf + have, sizeof buf - have);
    if (n <= 0) return;
    have += (size_t)n;
    for (;;) {
      size_t i = 0, len = 0;
      while (i < have && buf[i] >= '0' && buf[i] <= '9' && i < 9) len = len * 10 + (size_t)(buf[i++] - '0');
      if (i < have && buf[i] != ':') return; /* not a netstring: drop the client */
      if (i >= have || i + 1 + len >= have) break;
      if (len + i + 2 > sizeof buf) return;
      if (write(c, REPLY, sizeof REPLY - 1) < 0) return;
      size_t used = i + 2 + len;
      memmove(buf, buf + used, have - used);
      have -= used;
    }
    if (have == sizeof buf) return;
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: floor SOCKET_PATH\n");
    return 2;
  }
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
  unlink(argv[1]);
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 16) != 0) {
    perror("floor");
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    serve(c);
    close(c);
  }
}
