//! OpenShift's build status reasons, as an enum.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why a Build is in its phase: OpenShift's `StatusReason` set (`build/v1/consts.go`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum StatusReason {
    /// The build pod spec could not be generated.
    CannotCreateBuildPodSpec,
    /// The build pod could not be created.
    CannotCreateBuildPod,
    /// The output reference is invalid.
    InvalidOutputReference,
    /// An image reference is invalid.
    InvalidImageReference,
    /// Cancelling the build failed.
    CancelBuildFailed,
    /// The build pod was deleted before the build finished.
    BuildPodDeleted,
    /// The build ran past its retry timeout.
    ExceededRetryTimeout,
    /// The push secret does not exist.
    MissingPushSecret,
    /// The post-commit hook failed.
    PostCommitHookFailed,
    /// Pushing the image to the registry failed.
    PushImageToRegistryFailed,
    /// Pulling the base (builder) image failed.
    PullBuilderImageFailed,
    /// Fetching the source failed.
    FetchSourceFailed,
    /// Fetching image content failed.
    FetchImageContentFailed,
    /// Preparing the Dockerfile failed.
    ManageDockerfileFailed,
    /// The context directory is missing or escapes the checkout.
    InvalidContextDirectory,
    /// The build was cancelled.
    CancelledBuild,
    /// The container image build failed.
    DockerBuildFailed,
    /// A pod with the build pod's name exists and is not owned by the build.
    BuildPodExists,
    /// The build pod finished without container statuses.
    NoBuildContainerStatus,
    /// A container of the build pod failed.
    FailedContainer,
    /// An environment variable could not be resolved.
    UnresolvableEnvironmentVariable,
    /// A build failure with no more specific reason.
    GenericBuildFailed,
    /// The build pod was killed for running out of memory.
    OutOfMemoryKilled,
    /// The build's service account could not be read.
    CannotRetrieveServiceAccount,
    /// The build pod was evicted.
    BuildPodEvicted,
}

impl StatusReason {
    /// The reason's name as it appears in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CannotCreateBuildPodSpec => "CannotCreateBuildPodSpec",
            Self::CannotCreateBuildPod => "CannotCreateBuildPod",
            Self::InvalidOutputReference => "InvalidOutputReference",
            Self::InvalidImageReference => "InvalidImageReference",
            Self::CancelBuildFailed => "CancelBuildFailed",
            Self::BuildPodDeleted => "BuildPodDeleted",
            Self::ExceededRetryTimeout => "ExceededRetryTimeout",
            Self::MissingPushSecret => "MissingPushSecret",
            Self::PostCommitHookFailed => "PostCommitHookFailed",
            Self::PushImageToRegistryFailed => "PushImageToRegistryFailed",
            Self::PullBuilderImageFailed => "PullBuilderImageFailed",
            Self::FetchSourceFailed => "FetchSourceFailed",
            Self::FetchImageContentFailed => "FetchImageContentFailed",
            Self::ManageDockerfileFailed => "ManageDockerfileFailed",
            Self::InvalidContextDirectory => "InvalidContextDirectory",
            Self::CancelledBuild => "CancelledBuild",
            Self::DockerBuildFailed => "DockerBuildFailed",
            Self::BuildPodExists => "BuildPodExists",
            Self::NoBuildContainerStatus => "NoBuildContainerStatus",
            Self::FailedContainer => "FailedContainer",
            Self::UnresolvableEnvironmentVariable => "UnresolvableEnvironmentVariable",
            Self::GenericBuildFailed => "GenericBuildFailed",
            Self::OutOfMemoryKilled => "OutOfMemoryKilled",
            Self::CannotRetrieveServiceAccount => "CannotRetrieveServiceAccount",
            Self::BuildPodEvicted => "BuildPodEvicted",
        }
    }
}

impl std::fmt::Display for StatusReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_matches_serde_name() {
        for reason in [
            StatusReason::CannotCreateBuildPodSpec,
            StatusReason::BuildPodDeleted,
            StatusReason::MissingPushSecret,
            StatusReason::InvalidContextDirectory,
            StatusReason::OutOfMemoryKilled,
            StatusReason::BuildPodEvicted,
            StatusReason::GenericBuildFailed,
        ] {
            let json = serde_json::to_value(reason).unwrap();
            assert_eq!(json, serde_json::Value::String(reason.as_str().to_string()));
        }
    }
}
