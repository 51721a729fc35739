/*
 * git-zoo's native front (spec/server.md): `git zoo find`, `ls`, `add`, `get` and `verify` answered
 * by the resident server (src/cli/serve.ts) without starting node; every other command, and any
 * case the server cannot take, runs node on bin/git-zoo.js with the same arguments.
 *
 * The server is asked only for those commands, not for --help/-h, and not when GIT_ZOO_SERVER=0.
 * When the listing goes to a pager (stdout a terminal), the server says which ('p' frame) and the
 * client runs it here, on the user's terminal, as src/cli/pager.ts does in node. The socket is $XDG_RUNTIME_DIR/git-zoo/serve.sock, else
 * /tmp/git-zoo-<uid>/serve.sock, used only when its folder is a real folder of this uid with mode
 * 0700. The server sends a 'b' frame when it begins the request; when no first frame comes within
 * GIT_ZOO_SERVER_WAIT ms (default 500: the server is busy with another request, or stuck) node runs
 * instead. find and ls only read, so that is safe as it is; add, get and verify write, so they start
 * in two steps: the server waits for this client's go-ahead byte ('g') after its 'b', and a client
 * that gave up closes instead (the server then drops the request): a command never runs twice.
 * Any failure before the first byte of output (no socket, refused, another build, the server gone
 * before the go-ahead) runs node instead, so the user never sees the server fail; after output began
 * (or, for add, get and verify, after the go-ahead), a server that goes away is reported and the exit
 * status is 70 (E_INTERNAL), as bin/git-zoo.js does.
 *
 * Ctrl-C and SIGTERM during add, get or verify reach this process (the terminal's foreground): they
 * are forwarded ('i' / 't') and the client waits for the server's exit frame (the command cleans up and
 * says so, exit 130 / 143). A second signal a second or more after the first, or no answer within
 * 5 s of the first, ends the client at once (the server goes on unwinding the request).
 *
 * The package folder comes from GIT_ZOO_FRONT_ROOT (set by bin/git-zoo, removed before node or the
 * server sees the environment), else /proc/self/exe, else the path this program was run by.
 *
 * Built by scripts/build-front.mjs: cc -O2 -DGZ_BUILD_ID='"<id>"' -DGZ_NODE='"<node>"'.
 * Wire format: src/cli/front/protocol.ts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#ifndef GZ_BUILD_ID
#error "GZ_BUILD_ID must be defined (scripts/build-front.mjs)"
#endif
#ifndef GZ_NODE
#define GZ_NODE "node"
#endif

extern char **environ;

static char root[PATH_MAX]; /* the package folder: this binary is <root>/dist/front/git-zoo */
static int started;          /* output was written: no falling back to node any more */
static int is_run;           /* add, get or verify: started in two steps, signals forwarded */
static const char *command;  /* argv[1] */
static void end_pager(void);

/*
 * Signals during add, get and verify (after the go-ahead): the handler writes the signal's number to
 * a pipe (the self-pipe trick: no signal is lost between a check and a blocking read), and every wait
 * for the server also watches that pipe.
 */
static int sig_pipe[2] = { -1, -1 };
static int sock_fd = -1;
static int first_sig;          /* the signal forwarded to the server (0: none yet) */
static long long first_sig_ms; /* when, on the monotonic clock */
#define GRACE_MS 5000  /* as src/cli/interrupt.ts: how long the command may take to clean up */
#define REPEAT_MS 1000 /* a signal this soon after the first is the same one delivered twice (git forwards Ctrl-C) */

static void on_signal(int sig) {
  int e = errno;
  unsigned char c = (unsigned char)sig;
  if (write(sig_pipe[1], &c, 1) < 0) { /* the pipe is full: a signal is pending already */ }
  errno = e;
}

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int status_of(int sig) { return sig == SIGTERM ? 143 : 130; }

static void catch_signals(void) {
  if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return; /* no forwarding: a signal ends the client, the server then aborts */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART: a blocking call returns, the pipe says why */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

/* Signals that arrived: the first goes to the server; a later one (a second or more after) ends us at once. */
static void forward_signals(void) {
  unsigned char c;
  while (read(sig_pipe[0], &c, 1) == 1) {
    int sig = c;
    if (!first_sig) {
      first_sig = sig;
      first_sig_ms = now_ms();
      char b = sig == SIGTERM ? 't' : 'i';
      if (send(sock_fd, &b, 1, MSG_NOSIGNAL) < 0) { /* the server is gone: the next read says so */ }
    } else if (now_ms() - first_sig_ms >= REPEAT_MS) {
      fprintf(stderr, "git zoo: interrupted again; stopping at once (run `git zoo gc` later to drop what was left half-written)\n");
      exit(status_of(sig));
    }
  }
}

/* Wait until `fd` can be read, forwarding signals meanwhile; after one, wait at most GRACE_MS in all. */
static void wait_readable(int fd) {
  if (sig_pipe[0] < 0) return;
  for (;;) {
    struct pollfd pf[2] = { { .fd = fd, .events = POLLIN }, { .fd = sig_pipe[0], .events = POLLIN } };
    int timeout = -1;
    if (first_sig) {
      long long left = first_sig_ms + GRACE_MS - now_ms();
      if (left <= 0) {
        fprintf(stderr, "git zoo: interrupted; cleaning up took over %d s, stopping at once\n", GRACE_MS / 1000);
        exit(status_of(first_sig));
      }
      timeout = (int)left;
    }
    int r = poll(pf, 2, timeout);
    if (r < 0 && errno != EINTR) return;
    if (r > 0 && pf[1].revents) forward_signals();
    if (r > 0 && pf[0].revents) return;
  }
}

/* Run the command through node: the node that built the client, else `node` on PATH. */
static void run_node(int argc, char **argv) {
  char js[PATH_MAX + 32];
  snprintf(js, sizeof js, "%s/bin/git-zoo.js", root);
  char **args = calloc((size_t)argc + 2, sizeof *args);
  if (!args) { perror("git zoo"); exit(71); }
  args[0] = "node";
  args[1] = js;
  for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
  args[argc + 1] = NULL;
  if (GZ_NODE[0] == '/') execv(GZ_NODE, args);
  execvp("node", args);
  fprintf(stderr, "git zoo: cannot run node (%s, nor node on PATH): %s\n", GZ_NODE, strerror(errno));
  exit(127);
}

/* The server went away after output began: say so, as bin/git-zoo.js does for an internal error. */
static void lost(const char *why) {
  if (is_run)
    fprintf(stderr, "git zoo: internal error: the server %s before `git zoo %s` finished; what it left is what an interrupted "
                    "command leaves (the store stays valid: `git zoo verify` checks it, `git log` shows whether a promotion was "
                    "committed). This is a bug in git-zoo; please report it with the command you ran (GIT_ZOO_SERVER=0 runs it "
                    "without the server).\n", why, command);
  else
    fprintf(stderr, "git zoo: internal error: the query server %s before the command finished; the catalog is only read, "
                    "so nothing was changed and the command can be run again. This is a bug in git-zoo; please report it "
                    "with the command you ran (GIT_ZOO_SERVER=0 runs it without the server).\n", why);
  end_pager(); /* what was paged stays readable until the user quits the pager */
  exit(70);
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) { if (errno == EINTR) continue; return -1; }
    p += w; n -= (size_t)w;
  }
  return 0;
}

/* Read exactly n bytes; 0 on success, -1 on end of stream or error. */
static int read_all(int fd, char *p, size_t n) {
  while (n > 0) {
    wait_readable(fd);
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r; n -= (size_t)r;
  }
  return 0;
}

/* A growing byte buffer: the request (NUL-terminated strings), the text given to the pager. */
struct buf { char *p; size_t n, cap; };

static void append(struct buf *b, const char *s, size_t len) {
  if (b->n + len > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + len) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) { perror("git zoo"); exit(71); }
    b->p = p; b->cap = cap;
  }
  memcpy(b->p + b->n, s, len);
  b->n += len;
}

static void put(struct buf *b, const char *s) { append(b, s, strlen(s) + 1); }

/*
 * The pager, as src/cli/pager.ts runs it: `sh -c <cmd>` reading the listing on its stdin, LESS=FRX
 * and LV=-c unless set; a pager that cannot start (status 127) means the listing is printed.
 */
static pid_t pager_pid = -1;
static int pager_fd = -1, pager_gone;
static struct buf paged;

static void start_pager(const char *cmd) {
  int p[2];
  if (pipe(p) != 0) return; /* no pager: printed directly */
  signal(SIGPIPE, SIG_IGN); /* the pager may quit before reading everything (q in less) */
  pid_t pid = fork();
  if (pid < 0) { close(p[0]); close(p[1]); return; }
  if (pid == 0) {
    signal(SIGINT, SIG_DFL);
    signal(SIGQUIT, SIG_DFL);
    dup2(p[0], 0);
    close(p[0]);
    close(p[1]);
    setenv("LESS", "FRX", 0);
    setenv("LV", "-c", 0);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  close(p[0]);
  pager_fd = p[1];
  pager_pid = pid;
  /* as git does: Ctrl-C and Ctrl-\ are the pager's while it runs (less uses them), not a reason to end */
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
}

/* After the last frame: let the pager finish; print the listing when it could not start. */
static void end_pager(void) {
  if (pager_pid < 0) return;
  close(pager_fd);
  int st = 0;
  while (waitpid(pager_pid, &st, 0) < 0 && errno == EINTR) {}
  pager_pid = -1;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 127) write_all(1, paged.p, paged.n);
}

/* Whether `dir` is a real folder of this user with mode 0700. */
static int safe_dir(const char *dir) {
  struct stat st;
  if (lstat(dir, &st) != 0) return 0;
  return S_ISDIR(st.st_mode) && st.st_uid == getuid() && (st.st_mode & 0777) == 0700;
}

/* <root>/dist/front/git-zoo: three components up from `exe` into root; 0 when it is not that deep */
static int root_of(char *exe) {
  for (int up = 0; up < 3; up++) {
    char *slash = strrchr(exe, '/');
    if (!slash || slash == exe) return 0;
    *slash = '\0';
  }
  snprintf(root, sizeof root, "%s", exe);
  return 1;
}

static void find_root(const char *argv0) {
  const char *given = getenv("GIT_ZOO_FRONT_ROOT");
  if (given && *given && strlen(given) < sizeof root) {
    snprintf(root, sizeof root, "%s", given);
    unsetenv("GIT_ZOO_FRONT_ROOT"); /* the wrapper's note to this program, not for node or the server */
    return;
  }
  unsetenv("GIT_ZOO_FRONT_ROOT");
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) { exe[n] = '\0'; if (root_of(exe)) return; }
  if (strchr(argv0, '/') && realpath(argv0, exe) && root_of(exe)) return;
  fprintf(stderr, "git zoo: cannot find the git-zoo package this program belongs to (no GIT_ZOO_FRONT_ROOT, /proc/self/exe "
                  "nor %s); run it through bin/git-zoo\n", argv0);
  exit(71);
}

/* GIT_ZOO_SERVER_WAIT: ms to wait for the server's first frame (default 500). */
static int wait_ms(void) {
  const char *v = getenv("GIT_ZOO_SERVER_WAIT");
  if (!v || !*v) return 500;
  char *end;
  long n = strtol(v, &end, 10);
  if (*end || n < 0 || n > 86400000L) return 500;
  return (int)n;
}

int main(int argc, char **argv) {
  find_root(argv[0]);
  const char *cmd = argc > 1 ? argv[1] : "";
  command = cmd;
  is_run = strcmp(cmd, "add") == 0 || strcmp(cmd, "get") == 0 || strcmp(cmd, "verify") == 0;
  if (!is_run && strcmp(cmd, "find") != 0 && strcmp(cmd, "ls") != 0) run_node(argc, argv);
  const char *off = getenv("GIT_ZOO_SERVER");
  if (off && strcmp(off, "0") == 0) run_node(argc, argv);
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) break;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) run_node(argc, argv);
  }
  int out_tty = isatty(1), err_tty = isatty(2);

  char dir[PATH_MAX];
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  if (xdg && *xdg) snprintf(dir, sizeof dir, "%s/git-zoo", xdg);
  else snprintf(dir, sizeof dir, "/tmp/git-zoo-%u", (unsigned)getuid());
  if (!safe_dir(dir)) run_node(argc, argv);
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if ((size_t)snprintf(addr.sun_path, sizeof addr.sun_path, "%s/serve.sock", dir) >= sizeof addr.sun_path) run_node(argc, argv);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) run_node(argc, argv);

  char cwd[PATH_MAX], num[32];
  if (!getcwd(cwd, sizeof cwd)) run_node(argc, argv);
  mode_t mask = umask(0);
  umask(mask);
  struct buf b = { 0 };
  put(&b, "len"); /* 4 bytes: the length, filled in below */
  put(&b, is_run ? "run" : "query");
  put(&b, GZ_BUILD_ID);
  put(&b, cwd);
  put(&b, out_tty ? "1" : "0");
  put(&b, err_tty ? "1" : "0");
  snprintf(num, sizeof num, "%o", (unsigned)mask);
  put(&b, num);
  struct winsize ws; /* the terminal's width, for progress lines on stderr */
  snprintf(num, sizeof num, "%u", err_tty && ioctl(2, TIOCGWINSZ, &ws) == 0 ? (unsigned)ws.ws_col : 0u);
  put(&b, num);
  snprintf(num, sizeof num, "%d", argc - 1);
  put(&b, num);
  for (int i = 1; i < argc; i++) put(&b, argv[i]);
  for (char **e = environ; *e; e++) put(&b, *e);
  uint32_t len = (uint32_t)(b.n - 4);
  b.p[0] = (char)(len >> 24); b.p[1] = (char)(len >> 16); b.p[2] = (char)(len >> 8); b.p[3] = (char)len;
  /* send(), not write(): a server that died after accepting gives EPIPE, not a SIGPIPE that kills us */
  for (size_t off = 0; off < b.n;) {
    ssize_t w = send(fd, b.p + off, b.n - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) run_node(argc, argv);
    off += (size_t)w;
  }
  free(b.p);

  static char chunk[65536];
  int first = 1;
  int went = 0; /* add, get, verify: the go-ahead was sent (from then on the command may have run: never node) */
  sock_fd = fd;
  for (;;) {
    unsigned char head[5];
    if (first) {
      /* the server is busy or stuck when nothing comes within the bound: node answers (find and ls only
         read; add, get and verify run in the server only on the go-ahead this client then never sends) */
      struct pollfd pf = { .fd = fd, .events = POLLIN };
      int r;
      while ((r = poll(&pf, 1, wait_ms())) < 0 && errno == EINTR) {}
      if (r == 0) { close(fd); run_node(argc, argv); }
      first = 0;
    }
    if (read_all(fd, (char *)head, 5) != 0) {
      if (!started && !went) run_node(argc, argv);
      lost("closed the connection");
    }
    uint32_t n = (uint32_t)head[1] << 24 | (uint32_t)head[2] << 16 | (uint32_t)head[3] << 8 | head[4];
    char type = (char)head[0];
    if (type == 'o' || type == 'e') {
      int to = type == 'o' ? 1 : 2;
      while (n > 0) {
        size_t want = n < sizeof chunk ? n : sizeof chunk;
        if (read_all(fd, chunk, want) != 0) {
          if (!started && !went) run_node(argc, argv);
          lost("closed the connection");
        }
        started = 1;
        if (to == 1 && pager_pid >= 0) {
          append(&paged, chunk, want);
          if (!pager_gone && write_all(pager_fd, chunk, want) != 0) pager_gone = 1;
        } else if (write_all(to, chunk, want) != 0) {
          fprintf(stderr, "git zoo: cannot write to %s: %s\n", to == 1 ? "stdout" : "stderr", strerror(errno));
          return 3;
        }
        n -= (uint32_t)want;
      }
    } else if (type == 'x') {
      if (n >= sizeof num || read_all(fd, num, n) != 0) lost("sent a broken exit frame");
      num[n] = '\0';
      end_pager();
      return atoi(num);
    } else if (type == 'b' && n == 0) {
      /* the server began the request; add, get and verify run only on our go-ahead, and from then on
         Ctrl-C and SIGTERM are forwarded to it rather than ending this process */
      if (is_run && !went) {
        catch_signals();
        char g = 'g';
        ssize_t w;
        while ((w = send(fd, &g, 1, MSG_NOSIGNAL)) < 0 && errno == EINTR) {}
        if (w != 1) run_node(argc, argv); /* the server is gone: it cannot have read the go-ahead */
        went = 1;
      }
    } else if (type == 'p') {
      char *cmd = malloc((size_t)n + 1);
      if (!cmd) { perror("git zoo"); exit(71); }
      if (read_all(fd, cmd, n) != 0) {
        if (!started && !went) run_node(argc, argv);
        lost("closed the connection");
      }
      cmd[n] = '\0';
      started = 1;
      if (pager_pid < 0) start_pager(cmd); /* a second one is ignored: one pager per listing */
      free(cmd);
    } else if (type == 's') {
      /* declined: another build, or a request it does not take (before anything of it ran) */
      if (first_sig) { fprintf(stderr, "git zoo: interrupted\n"); exit(status_of(first_sig)); }
      if (!started) run_node(argc, argv);
      lost("declined");
    } else {
      if (!started && !went) run_node(argc, argv);
      lost("sent an unknown frame");
    }
  }
}
