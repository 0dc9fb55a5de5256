//! The DNS server's wire side: a hickory-server `RequestHandler` that
//! answers each query from the current [`Records`] table.
//!
//! Hand-written rather than hickory's `Catalog` of in-memory zones because
//! the table is rebuilt whole on every store change and swapped in one
//! pointer write; a catalog would need its zones rebuilt and re-registered
//! under a lock that the server owns.
//!
//! Answers: authoritative for the cluster zone and the lab host names,
//! TTL [`super::TTL`] (5 s, as CoreDNS's default `ttl`); negative answers
//! in the zone carry the zone's SOA (minimum = TTL) so resolvers cache
//! them no longer than a positive answer. Names outside the zone that are
//! not lab hosts get NXDOMAIN: the lab has no network beyond itself and no
//! upstream, and a definite "no such name" lets a resolver with a search
//! list move on at once, where REFUSED would make it try again.

use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use hickory_proto::op::{Edns, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tracing::{debug, warn};

use super::records::{Answer, QueryType, Records};

/// The table the handler answers from, replaced whole on each change.
pub type SharedRecords = Arc<RwLock<Arc<Records>>>;

/// Answers queries from a [`SharedRecords`].
pub struct Handler {
    pub records: SharedRecords,
    pub ttl: u32,
}

impl RequestHandler for Handler {
    // `#[async_trait]`'s expansion, written out (the crate is not a
    // dependency of the lab).
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: ResponseHandler + 'async_trait,
        T: Time + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.respond(request, response_handle))
    }
}

impl Handler {
    fn current(&self) -> Arc<Records> {
        self.records
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn respond<R: ResponseHandler>(&self, request: &Request, mut handle: R) -> ResponseInfo {
        let table = self.current();
        let edns = request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().max(512));
            e.set_version(0);
            e
        });
        let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let query = match request.request_info() {
            Ok(info)
                if request.metadata.message_type == MessageType::Query
                    && request.metadata.op_code == OpCode::Query =>
            {
                info.query
            }
            _ => {
                let code = if request.metadata.op_code == OpCode::Query {
                    ResponseCode::FormErr
                } else {
                    ResponseCode::NotImp
                };
                return send(&mut handle, builder.error_msg(&request.metadata, code)).await;
            }
        };
        let owner = query.original().name().clone();
        let asked = owner.to_ascii();
        let qtype = match query.query_type() {
            RecordType::A => QueryType::A,
            RecordType::SRV => QueryType::Srv,
            _ => QueryType::Other,
        };
        let in_zone = table.in_zone(&asked);
        let soa = soa(&table, self.ttl);
        let mut answers = Vec::new();
        let mut additionals = Vec::new();
        let mut negative = Vec::new();
        let answer = if query.query_type() == RecordType::SOA
            && asked
                .trim_end_matches('.')
                .eq_ignore_ascii_case(&table.zone)
        {
            answers.extend(soa.clone());
            Answer::NoData
        } else {
            table.lookup(&asked, qtype)
        };
        match &answer {
            Answer::A(ips) => answers.extend(ips.iter().map(|ip| a_record(&owner, *ip, self.ttl))),
            Answer::Srv(targets) => {
                for t in targets {
                    let Ok(target) = Name::from_ascii(format!("{}.", t.target)) else {
                        continue;
                    };
                    if let Answer::A(ips) = table.lookup(&t.target, QueryType::A) {
                        additionals.extend(ips.iter().map(|ip| a_record(&target, *ip, self.ttl)));
                    }
                    answers.push(Record::from_rdata(
                        owner.clone(),
                        self.ttl,
                        RData::SRV(SRV::new(0, t.weight, t.port, target)),
                    ));
                }
            }
            Answer::NoData | Answer::NxDomain => {
                if in_zone && answers.is_empty() {
                    negative.extend(soa);
                }
            }
        }
        metadata.authoritative = in_zone || !matches!(answer, Answer::NxDomain);
        metadata.response_code = if answer == Answer::NxDomain {
            ResponseCode::NXDomain
        } else {
            ResponseCode::NoError
        };
        debug!(name = %asked, ?qtype, ?answer, "dns answer");
        let response = builder.build(
            metadata,
            answers.iter(),
            [].iter(),
            negative.iter(),
            additionals.iter(),
        );
        send(&mut handle, response).await
    }
}

fn a_record(owner: &Name, ip: Ipv4Addr, ttl: u32) -> Record {
    Record::from_rdata(owner.clone(), ttl, RData::A(A(ip)))
}

/// The zone's SOA, as CoreDNS's kubernetes plugin serves it.
fn soa(table: &Records, ttl: u32) -> Option<Record> {
    let zone = Name::from_ascii(format!("{}.", table.zone)).ok()?;
    let mname = Name::from_ascii(format!("ns.dns.{}.", table.zone)).ok()?;
    let rname = Name::from_ascii(format!("hostmaster.{}.", table.zone)).ok()?;
    Some(Record::from_rdata(
        zone,
        ttl,
        RData::SOA(SOA::new(mname, rname, table.serial, 7200, 1800, 86400, ttl)),
    ))
}

async fn send<'a, R: ResponseHandler>(
    handle: &mut R,
    response: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
) -> ResponseInfo {
    let fallback = {
        let mut m = *response.metadata();
        m.response_code = ResponseCode::ServFail;
        m
    };
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(error) => {
            warn!(%error, "failed to send a dns response");
            ResponseInfo::from(hickory_proto::op::Header {
                metadata: fallback,
                counts: Default::default(),
            })
        }
    }
}
