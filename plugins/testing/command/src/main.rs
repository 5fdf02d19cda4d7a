//! A WASI command component (it exports `wasi:cli/run`): a component, but not of the plugin
//! world. The apiserver must refuse to store it as a plugin.

fn main() {
    println!("hello from a command, not a plugin");
}
