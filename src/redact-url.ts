// A URL as it may be shown (check-config, logs, error messages): the password
// of any scheme is replaced by [redacted], whether it sits in the userinfo
// (postgres://user:pw@host, redis://:pw@host) or in a query parameter
// (postgres://user@host/db?password=pw). The userinfo runs to the last "@"
// before the query, so a password with an unescaped "@" or "/" is covered
// whole; a URL that cannot be split is redacted more, never less.

const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^?#]*)@/i;
const QUERY_PASSWORD = /([?&](?:ssl)?password=)[^&#]*/gi;

export function redactUrl(url: string): string {
  return url
    .replace(USERINFO, (_m, scheme: string, cred: string) => {
      const colon = cred.indexOf(":");
      // Redis takes a bare userinfo as the password; for other schemes it is the user name.
      if (colon < 0) return /^rediss?:/i.test(scheme) ? `${scheme}[redacted]@` : `${scheme}${cred}@`;
      return `${scheme}${cred.slice(0, colon)}:[redacted]@`;
    })
    .replace(QUERY_PASSWORD, "$1[redacted]");
}
