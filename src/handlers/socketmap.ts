// The socketmap server's handler: the maps (rules/maps.ts) with their facts
// (facts.ts), the debug line and metrics of each lookup (handlers/record.ts),
// the warnings the maps raise (once each); and the netstring wire glue.

import type { Logger } from "pino";
import { isStoreError, type Facts, type MapAsk } from "../facts.js";
import { ANSWERS, MAP_NAMES, mapView, type MapAnswer, type MapView } from "../rules/maps.js";
import { NOTFOUND, temp, formatSocketmapReply, isBlankRequest, parseSocketmapRequest, type SocketmapReply } from "../protocol/socketmap.js";
import { encodeNetstring, netstring, NetstringDecoder } from "../protocol/netstring.js";
import type { Framing, Protocol } from "../server/listener.js";
import { then, type Maybe } from "../maybe.js";
import { recorded, type Recorder } from "./record.js";

export { MAP_NAMES, MAX_REPLY_BYTES, type MapName } from "../rules/maps.js";

export interface SocketmapEvents {
  onRequest?(map: string, status: SocketmapReply["status"], seconds: number): void;
}

/** Distinct unknown map names warned about; more are not (a misconfigured map is one name). */
const MAX_UNKNOWN_MAPS_WARNED = 16;
/** Distinct map warnings (list problems) logged; past this many, no more. */
const MAX_WARNED = 1000;

export class SocketmapHandler {
  readonly #facts: Facts;
  readonly #log: Logger;
  readonly #events: SocketmapEvents;
  readonly #unknownMaps = new Set<string>();
  readonly #warned = new Set<string>();
  readonly #recorder: Recorder<MapView, SocketmapReply>;

  constructor(facts: Facts, log: Logger, events: SocketmapEvents = {}) {
    this.#facts = facts;
    this.#log = log;
    this.#events = events;
    this.#recorder = {
      timed: () => this.#events.onRequest !== undefined || this.#log.isLevelEnabled("debug"),
      failed: (_q, err) => this.#failed(isStoreError(err), err instanceof Error ? err.message : String(err)),
      report: (q, r, seconds) => {
        this.#events.onRequest?.(q.map, r.status, seconds);
        if (this.#log.isLevelEnabled("debug")) this.#log.debug({ map: q.map, key: q.rawKey, status: r.status, ms: seconds * 1000 }, "socketmap lookup");
      },
    };
  }

  /** Answer one lookup; never throws or rejects. */
  answer(map: string, rawKey: string): Maybe<SocketmapReply> {
    return recorded(mapView(map, rawKey, this.#facts.settings), this.#answer, this.#recorder);
  }

  readonly #answer = (v: MapView): Maybe<SocketmapReply> => then(this.#facts.map(v), this.#answered);

  readonly #answered = (ask: MapAsk): SocketmapReply => {
    if (ask.storeError !== undefined) return this.#failed(true, ask.storeError);
    return this.#reply(ask.view.map, ask.answer!);
  };

  #reply(map: string, a: MapAnswer): SocketmapReply {
    if (a === ANSWERS.unknownMap) this.#unknownMap(map);
    const w = a.warning;
    if (w !== undefined && !this.#warned.has(w.key) && this.#warned.size <= MAX_WARNED) {
      this.#warned.add(w.key);
      this.#log[w.level](w.fields, w.msg);
    }
    return a.reply;
  }

  #failed(store: boolean, message: string): SocketmapReply {
    // An outage the store has announced (one line) is not logged again per request.
    if (store && this.#facts.store.problem !== null) return ANSWERS.dbError.reply;
    this.#log.error({ err: message }, store ? "database error during socketmap lookup" : "internal error during socketmap lookup");
    return ANSWERS.dbError.reply;
  }

  /** The first lookup of each unknown map name is logged. */
  #unknownMap(map: string): void {
    const name = map.slice(0, 40);
    if (!this.#unknownMaps.has(name) && this.#unknownMaps.size < MAX_UNKNOWN_MAPS_WARNED) {
      this.#unknownMaps.add(name);
      this.#log.warn({ map: name }, `socketmap lookup in unknown map ${JSON.stringify(name)} answered NOTFOUND; mailcloak serves ${MAP_NAMES.join(", ")} (check the map name in main.cf)`);
    }
  }
}

/** Wire protocol glue: netstrings in, netstrings out, one request at a time. */
export function socketmapProtocol(handler: SocketmapHandler): Protocol<Buffer> {
  // As the Go version: a blank payload is NOTFOUND, one without "name key" a bare TEMP.
  const blank = encodeNetstring(formatSocketmapReply(NOTFOUND));
  const malformed = encodeNetstring(formatSocketmapReply(temp("")));
  const cache = new Map<SocketmapReply, Buffer>();
  const encode = (r: SocketmapReply): string | Buffer => {
    // Constant replies (NOTFOUND, TEMP) are encoded once.
    if (r.status === "OK") return netstring(formatSocketmapReply(r));
    let b = cache.get(r);
    if (!b) {
      b = encodeNetstring(formatSocketmapReply(r));
      if (cache.size < 64) cache.set(r, b);
    }
    return b;
  };
  return {
    name: "socketmap",
    newFraming(max: number): Framing<Buffer> {
      const d = new NetstringDecoder(max);
      return {
        push: (chunk) => {
          const r = d.push(chunk);
          return { items: r.frames, error: r.error };
        },
        get midRequest() {
          return d.pending > 0;
        },
      };
    },
    handle(payload: Buffer) {
      const req = parseSocketmapRequest(payload);
      if (!req) return isBlankRequest(payload) ? blank : malformed;
      return then(handler.answer(req.map, req.key), encode);
    },
  };
}
