//! The `Identity` service that `tonic-server` serves (and the tests serve
//! in process): `WhoAmI` answers the caller's SPIFFE ID, `Admin` welcomes
//! whoever the server's layer lets reach it.

use mtls_tower::tonic_peer;
use tonic::{Request, Response, Status};

use crate::identity_proto::identity_server::Identity;
use crate::identity_proto::{AdminReply, AdminRequest, WhoAmIReply, WhoAmIRequest};

/// The `Identity` service.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdentityService;

#[tonic::async_trait]
impl Identity for IdentityService {
    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIReply>, Status> {
        let peer = tonic_peer(&request)?;
        Ok(Response::new(WhoAmIReply {
            spiffe_id: peer.spiffe_id().to_string(),
        }))
    }

    /// Reached only by the callers the server's layer lets through
    /// (`tonic-server`: the `--admin` IDs; the others get
    /// `PERMISSION_DENIED`).
    async fn admin(&self, request: Request<AdminRequest>) -> Result<Response<AdminReply>, Status> {
        tonic_peer(&request)?;
        Ok(Response::new(AdminReply {
            message: "welcome, admin".to_owned(),
        }))
    }
}
