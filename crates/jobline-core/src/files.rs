//! The names of the files jobs keep. A job's files are stored by job id and name, and two
//! crates meet on them: the HTTP edge writes a job's input and signs download links to its
//! outputs, the worker reads the input and writes the outputs. Both take the names from here,
//! so neither has to depend on the other for a string.

/// The file a client uploads for a job to consume (a PXM import's CSV or JSON, a Zuora bulk
/// job's CSV).
pub const INPUT: &str = "input";

/// The CSV a Promotions `code_export` job writes.
pub const PROMOTION_CODES: &str = "promotion-codes.csv";
