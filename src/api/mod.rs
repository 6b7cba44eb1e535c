//! kiln's API types: `BuildConfig` and `Build` (`build.kiln.dev/v1alpha1`) and `ImageStream`
//! (`image.kiln.dev/v1alpha1`), field-compatible with OpenShift's `build.openshift.io/v1` and
//! `image.openshift.io/v1`.

pub mod build;
pub mod build_config;
pub mod build_log;
pub mod common;
pub mod contract;
pub mod decode;
pub mod image_stream;
pub mod lenient;
pub mod path_names;
pub mod reason;
pub mod refs;
pub mod strict;
pub mod validate;

pub use build::{Build, BuildPhase, BuildSpec, BuildStatus};
pub use build_config::{BuildConfig, BuildConfigSpec, BuildConfigStatus, RunPolicy};
pub use common::CommonSpec;
pub use image_stream::{ImageStream, ImageStreamSpec, ImageStreamStatus, TagEvent};
pub use reason::StatusReason;
pub use refs::{
    build_number, config_of, config_reference, current_image, find_image, ImageRef, TagRef,
};

/// The API group of `BuildConfig` and `Build`.
pub const BUILD_GROUP: &str = "build.kiln.dev";
/// The API group of `ImageStream`.
pub const IMAGE_GROUP: &str = "image.kiln.dev";
/// The API version shared by every kiln kind.
pub const VERSION: &str = "v1alpha1";
