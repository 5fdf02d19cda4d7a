//! Structured logging through the host: one line per call, tagged by the host with scenario,
//! volume and instance.

use crate::Level;
use crate::bindings::chaos::plugin::host;

pub(crate) fn owned(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    host::log(level, message, &owned(fields));
}

pub fn debug(message: &str, fields: &[(&str, &str)]) {
    log(Level::Debug, message, fields);
}

pub fn info(message: &str, fields: &[(&str, &str)]) {
    log(Level::Info, message, fields);
}

pub fn warn(message: &str, fields: &[(&str, &str)]) {
    log(Level::Warn, message, fields);
}

pub fn error(message: &str, fields: &[(&str, &str)]) {
    log(Level::Error, message, fields);
}
