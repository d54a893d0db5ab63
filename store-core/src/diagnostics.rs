//! Health facts about a database file, as data (filled in by the operability work).
