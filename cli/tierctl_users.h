/* tierctl_users.h — `tierctl users` (tierctl_users.c). */
#ifndef TS_CLI_TIERCTL_USERS_H
#define TS_CLI_TIERCTL_USERS_H

/* args[0] is add, delete or list; mech_name NULL = SCRAM-SHA-512 (delete:
 * every mechanism). Returns the exit status. */
int tierctl_users(const char *log_dirs, const char *const *args, int nargs, const char *mech_name,
                  int iterations);

#endif
