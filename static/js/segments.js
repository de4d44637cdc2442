/**
 * SMS segment counting for the composer: how many billed segments a body makes, and why.
 *
 * The same rules and results as inbox/segments.py (tests/test_segments_js.py runs both over one
 * table); change the two together. No DOM code here.
 *
 * - Only GSM 03.38 characters: GSM-7, 160 septets in one segment, 153 per segment once split;
 *   the extension characters (^ { } \ [ ~ ] | € and form feed) count two.
 * - Anything else (emoji, smart quotes, ç, most accents): UCS-2, 70 UTF-16 units in one segment,
 *   67 per segment once split; characters outside the BMP count two.
 * - Once split, a segment never ends inside an escape pair or a surrogate pair: the character
 *   moves whole to the next segment.
 *
 * Strings are walked by code point (for...of), as Python walks a str, so `characters` and
 * `nonGsm` agree with the server.
 */

// The GSM 03.38 basic character set in code order, 0x00-0x7F, without 0x1B (the escape).
// 0x09 is capital Ç: a lowercase ç is not GSM.
const GSM_BASIC =
  "@£$¥èéùìòÇ\nØø\rÅå" +
  "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ" + // 0x1B (escape) sits between Ξ and Æ
  " !\"#¤%&'()*+,-./" +
  "0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNO" +
  "PQRSTUVWXYZÄÖÑÜ§" +
  "¿abcdefghijklmno" +
  "pqrstuvwxyzäöñüà";
// The extension table: each costs two septets (escape + character).
const GSM_EXTENSION = "\f^{}\\[~]|€";

const BASIC = new Set(GSM_BASIC);
const EXTENSION = new Set(GSM_EXTENSION);

const GSM_SINGLE = 160;
const GSM_MULTI = 153;
const UCS2_SINGLE = 70;
const UCS2_MULTI = 67;

// Look-alikes that force UCS-2 for no good reason (see plain_swaps in inbox/segments.py).
const SWAPS = new Map([
  ["\u2018", "'"],
  ["\u2019", "'"],
  ["\u201c", '"'],
  ["\u201d", '"'],
  ["\u2013", "-"],
  ["\u2014", "-"],
  ["\u2026", "..."],
  ["\u00a0", " "],
  ["\u202f", " "],
]);
const SWAP_PATTERN = new RegExp(`[${[...SWAPS.keys()].join("")}]`, "g");

/**
 * @param {string} body
 * @returns {{encoding: string, characters: number, units: number, segments: number,
 *            perSegment: number, remaining: number, nonGsm: string[]}}
 */
export function count(body) {
  const chars = [...body]; // code points, as Python sees them
  const nonGsm = nonGsmChars(chars);
  let encoding, single, multi, sizes;
  if (nonGsm.length) {
    [encoding, single, multi] = ["UCS-2", UCS2_SINGLE, UCS2_MULTI];
    sizes = chars.map((char) => char.length); // UTF-16 units: 2 for a surrogate pair
  } else {
    [encoding, single, multi] = ["GSM-7", GSM_SINGLE, GSM_MULTI];
    sizes = chars.map((char) => (EXTENSION.has(char) ? 2 : 1));
  }
  const units = sizes.reduce((sum, size) => sum + size, 0);
  let segments, perSegment, used;
  if (units <= single) {
    [segments, perSegment, used] = [units ? 1 : 0, single, units];
  } else {
    [segments, used] = pack(sizes, multi);
    perSegment = multi;
  }
  return {
    encoding,
    characters: chars.length,
    units,
    segments,
    perSegment,
    remaining: perSegment - used,
    nonGsm,
  };
}

/** Smart quotes, dashes, ellipsis and no-break spaces replaced by their GSM look-alikes. */
export function plainSwaps(body) {
  return body.replace(SWAP_PATTERN, (char) => SWAPS.get(char));
}

function nonGsmChars(chars) {
  // a Set keeps first-appearance order and drops repeats
  return [...new Set(chars.filter((char) => !BASIC.has(char) && !EXTENSION.has(char)))];
}

/** [segments, units used in the last one], never splitting one character's units. */
function pack(sizes, perSegment) {
  let segments = 1;
  let used = 0;
  for (const size of sizes) {
    if (used + size > perSegment) {
      segments += 1;
      used = 0;
    }
    used += size;
  }
  return [segments, used];
}
