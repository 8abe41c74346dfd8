// Who can reach a Unix socket whose mode lets "other" connect. Postfix's
// own private/ sockets are 0666, safe only because private/ is 0700: the
// directory, not the socket, keeps other users out. mailcloak accepts such
// modes (as the Go release does) and warns only when the directory does not
// do that job. Pure: takes the modes, returns the verdict.

export interface DirectoryInfo {
  /** st_mode of the socket's parent directory. */
  readonly mode: number;
  /** st_gid of the socket's parent directory. */
  readonly gid: number;
}

/**
 * The rule: a socket that grants write (connect) to "other" is exposed when
 * its parent directory grants search (x) to "other", or grants search to
 * its group and that group is not the socket's group (members of the
 * socket's own group may connect anyway). Only the parent directory is
 * looked at: a closed directory higher up is not seen, so the warning may
 * then be too cautious, never too lax about the parent.
 */
export function exposedToOthers(socketMode: number, socketGid: number, dir: DirectoryInfo): boolean {
  if ((socketMode & 0o002) === 0) return false;
  if ((dir.mode & 0o001) !== 0) return true;
  return (dir.mode & 0o010) !== 0 && dir.gid !== socketGid;
}
