import pg from "pg";

// bigint (int8) as a JSON number when it fits exactly (row counts, sizes); as text otherwise.
// pg's type parsers are process-wide: importing this module once sets them for every pool.
pg.types.setTypeParser(20, (value) => {
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : value;
});
