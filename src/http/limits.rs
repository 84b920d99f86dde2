//! Limits against slow and abusive clients: a deadline for receiving the whole request
//! body.
//!
//! The request head has its own deadline (`server.header_timeout_ms`, actix's client
//! request timeout) and the number of open connections a cap (`server.max_connections`),
//! both set on the server in [`crate::startup`]. This module adds what actix lacks: the
//! body must be complete within `server.body_timeout_ms` of the head. A client that stalls
//! or trickles its body gets `408` (JSON, `Connection: close`), its connection is closed
//! and what it sent so far is dropped.
//!
//! Why the request body is held until the response is sent: actix closes a connection
//! whose request body is unread when the response goes out, but if the body's reader was
//! already dropped and the body is chunked, it keeps the connection to drain the rest,
//! with no timer, so a stalled chunked client would hold its connection for ever. Keeping
//! the reader alive until the response body is done makes actix close instead.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::HttpMessage as _;
use futures::Stream;

/// The deadline a handler's body read runs under (an app-data value).
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// The body stream of one request, ended with a timeout error at the deadline.
struct Deadline {
    inner: Rc<RefCell<Payload>>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    done: bool,
}

/// The error the stream ends with; [`is_body_timeout`] recognises it.
fn timeout_error() -> PayloadError {
    PayloadError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "request body deadline passed",
    ))
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let polled = {
            let mut inner = self.inner.borrow_mut();
            Pin::new(&mut *inner).poll_next(cx)
        };
        if let Poll::Ready(item) = polled {
            if !matches!(item, Some(Ok(_))) {
                self.done = true;
            }
            return Poll::Ready(item);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.done = true;
            return Poll::Ready(Some(Err(timeout_error())));
        }
        Poll::Pending
    }
}

/// A response body that keeps the request body's reader alive until it is sent (see the
/// module doc).
struct HoldingRequestBody {
    body: BoxBody,
    _request_body: Rc<RefCell<Payload>>,
}

impl MessageBody for HoldingRequestBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// Middleware: wraps the request body in the deadline of [`BodyTimeout`] (if the app has
/// one). The clock starts when the head has been read.
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(BodyTimeout(limit)) = req.app_data::<BodyTimeout>().copied() else {
        return next.call(req).await.map(|r| r.map_into_boxed_body());
    };
    let inner = Rc::new(RefCell::new(req.take_payload()));
    let stream = Deadline {
        inner: inner.clone(),
        sleep: Box::pin(tokio::time::sleep(limit)),
        done: false,
    };
    let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(stream);
    req.set_payload(Payload::from(boxed));
    let res = next.call(req).await?;
    Ok(res
        .map_body(|_, body| {
            BoxBody::new(HoldingRequestBody {
                body: body.boxed(),
                _request_body: inner,
            })
        })
        .map_into_boxed_body())
}

/// True when `e` is the error a body that missed its deadline ends with.
pub fn is_body_timeout(e: &actix_web::Error) -> bool {
    match e.as_error::<PayloadError>() {
        Some(PayloadError::Io(io)) => io.kind() == std::io::ErrorKind::TimedOut,
        _ => false,
    }
}
