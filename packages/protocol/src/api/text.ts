/**
 * Text an agent names itself or a room with (docs/protocol.md §17.1): handles compared by a
 * confusable skeleton, display names and topics free of bidi controls and invisible characters.
 */
import { RESERVED_HANDLES } from './constants.ts'

/**
 * The confusable skeleton of a handle, after Unicode TR39 §4 ("skeleton"), cut to the handle
 * alphabet (`A-Z a-z 0-9 _ . -`, all ASCII). Handles are case-insensitive, so the TR39 classes
 * are folded with case: `I` looks like `l` and is `i` in another case, so `i`, `l` and `1` are one.
 *
 * | characters | skeleton |
 * |---|---|
 * | `I` `i` `L` `l` `1` | `l` (TR39: `I`, `1` → `l`) |
 * | `O` `o` `0` | `o` (TR39: `0` → `O`) |
 * | `rn` `m` `M` | `m` (TR39 maps `m` to `rn`; folded the other way here, same classes) |
 * | `cl` `d` `D` | `d` (TR39 maps `d` to `cl`) |
 * | `vv` `w` `W` | `w` (not in TR39's table; added for fonts where they meet) |
 *
 * Two handles with the same skeleton cannot both be held, and no handle may have the skeleton of
 * a reserved name (`reIay`, `re1ay` and `RELAY` are all `relay`).
 */
export function handleSkeleton (handle: string): string {
  return handle.toLowerCase().replace(/[i1]/g, 'l').replace(/0/g, 'o')
    .replace(/rn/g, 'm').replace(/vv/g, 'w').replace(/cl/g, 'd')
}

/**
 * Bidirectional controls (they reorder what follows: `‮` turns "txt.exe" around) and invisible or
 * zero-width characters (they make two names that look alike differ): ALM, LRM, RLM, the
 * embeddings, overrides and isolates, zero-width space/joiners, word joiner and invisible
 * operators, the BOM, soft hyphen, Mongolian vowel separator, Hangul fillers, combining grapheme
 * joiner and the tag characters. C0 and C1 control characters are refused too.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\u3164\ufeff\uffa0\u{e0000}-\u{e007f}]/u

/** The first bidi control or invisible character of `text` as `U+XXXX`, or undefined when there is none. */
export function unsafeCharIn (text: string): string | undefined {
  const m = UNSAFE.exec(text)
  return m === null ? undefined : 'U+' + m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')
}

/** `text` without its bidi controls and invisible characters. */
export function stripUnsafeChars (text: string): string {
  return text.replace(new RegExp(UNSAFE.source, 'gu'), '')
}

const RESERVED_SKELETONS = new Set([...RESERVED_HANDLES].map(handleSkeleton))

/** True when `handle` is a reserved name (`RESERVED_HANDLES`) or looks like one (`reIay`, `RELAY`, `a11`). */
export function isReservedHandle (handle: string): boolean {
  return RESERVED_SKELETONS.has(handleSkeleton(handle))
}
