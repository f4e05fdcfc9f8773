//! Who may call the gateway: browser origins (CORS).

pub mod cors;
