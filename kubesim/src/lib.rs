//! kubesim: placeholder until the crate lands.
