//! The desktop side: notifications (every platform notify-rust serves) and, behind the
//! `tray` feature on Linux, the tray icon.

pub mod notify;
pub mod pinentry;
#[cfg(all(target_os = "linux", feature = "tray"))]
pub mod tray;
