//! The pprof model: the generated `profile.proto` types, a builder that follows PPROF.md, and
//! reading and writing gzipped profiles.
mod builder;
mod io;
mod stacks;

pub use builder::{FrameInfo, LabelValue, MappingInfo, ProfileBuilder, SampleType};
pub use io::{decode_profile, read_profile, write_profile, DecodeError, ReadError};
pub use stacks::{Frame, ProfileError, ProfileView, Stack};

/// Types generated from `proto/profile.proto`.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/perftools.profiles.rs"));
}
