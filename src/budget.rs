//! The memory request bodies being read for the policy may hold, all connections together
//! (`limits.max_buffered_body_bytes`), and each client certificate's share of it.
//!
//! A body takes from the budget only what it holds (bytes that arrived, or the copy they are
//! gathered in) and gives it all back when its request is done with it. One certificate may
//! hold at most a quarter of the budget (and at least one body of the largest size), so a client
//! that sends parts of large bodies and stalls pins a bounded amount of memory and cannot take
//! the budget from everyone else. Nothing waits: a body that does not fit is refused at once.
//! It must not read bodies: it only counts what the request path says a body holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::reject::Refusal;

#[derive(Debug, Clone)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    limit: usize,
    per_identity: usize,
    /// What each certificate (by fingerprint) holds now; absent when nothing.
    held: Arc<Mutex<HashMap<Arc<str>, usize>>>,
}

/// What one request's body holds of the budget; given back when dropped.
#[derive(Debug)]
pub struct Share {
    permit: Option<OwnedSemaphorePermit>,
    who: Arc<str>,
    taken: usize,
    held: Arc<Mutex<HashMap<Arc<str>, usize>>>,
}

impl BodyBudget {
    /// `limit` bytes in all; a certificate's share is a quarter of it, but room for one body
    /// of the largest size (`max_body`) and what it holds once parsed (within `limit`).
    pub fn new(limit: usize, max_body: usize) -> BodyBudget {
        BodyBudget {
            bytes: Arc::new(Semaphore::new(limit.min(Semaphore::MAX_PERMITS))),
            limit,
            per_identity: (limit / 4).max(max_body.saturating_mul(2)).min(limit),
            held: Arc::default(),
        }
    }

    /// [`BodyBudget::take`] for what a parsed body holds besides its text: more than a whole
    /// certificate's share is refused for good (400: the body has too many values), not as
    /// busy.
    pub fn take_parsed(&self, share: &mut Share, more: usize) -> Result<(), Refusal> {
        if share.taken.saturating_add(more) > self.per_identity {
            return Err(Refusal::BadRequest(format!(
                "the request body's values hold {more} bytes once parsed, besides its text: more than one client certificate may hold ({} bytes, limits.max_buffered_body_bytes); send fewer values",
                self.per_identity
            )));
        }
        self.take(share, more)
    }

    /// An empty share for a body `who` (a certificate fingerprint) sends.
    pub fn share(&self, who: Arc<str>) -> Share {
        Share {
            permit: None,
            who,
            taken: 0,
            held: self.held.clone(),
        }
    }

    /// Adds `more` bytes to `share`, or refuses when the certificate's share or the budget
    /// cannot hold them now.
    pub fn take(&self, share: &mut Share, more: usize) -> Result<(), Refusal> {
        if more == 0 {
            return Ok(());
        }
        {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            let mine = held.entry(share.who.clone()).or_insert(0);
            if *mine + more > self.per_identity {
                if *mine == 0 {
                    held.remove(&share.who);
                }
                return Err(Refusal::BodiesBusy {
                    limit: self.per_identity,
                    whose: "this client certificate's bodies (its share of the budget)",
                });
            }
            *mine += more;
        }
        // Counted for the certificate first, so a refusal below must give it back.
        let permit = u32::try_from(more)
            .ok()
            .and_then(|n| self.bytes.clone().try_acquire_many_owned(n).ok());
        let Some(permit) = permit else {
            forget(&self.held, &share.who, more);
            return Err(Refusal::BodiesBusy {
                limit: self.limit,
                whose: "all clients' bodies",
            });
        };
        match &mut share.permit {
            Some(p) => p.merge(permit),
            None => share.permit = Some(permit),
        }
        share.taken += more;
        Ok(())
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        forget(&self.held, &self.who, self.taken);
    }
}

fn forget(held: &Mutex<HashMap<Arc<str>, usize>>, who: &Arc<str>, bytes: usize) {
    if bytes == 0 {
        return;
    }
    let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(mine) = held.get_mut(who) {
        *mine = mine.saturating_sub(bytes);
        if *mine == 0 {
            held.remove(who);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(r: Result<(), Refusal>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn a_certificate_holds_at_most_a_quarter_and_everyone_the_whole_budget() {
        let budget = BodyBudget::new(400, 50);
        let mut a = budget.share("a".into());
        budget.take(&mut a, 60).unwrap();
        budget.take(&mut a, 40).unwrap();
        let why = refused(budget.take(&mut a, 1));
        assert!(why.contains("this client certificate's bodies"), "{why}");
        assert!(why.contains("100 bytes"), "{why}");
        // Another request of the same certificate shares that quarter.
        let mut a2 = budget.share("a".into());
        assert!(budget.take(&mut a2, 1).is_err());
        // Others fill the rest, and then the whole budget is taken.
        let mut others: Vec<Share> = ["b", "c", "d"]
            .into_iter()
            .map(|w| {
                let mut s = budget.share(w.into());
                budget.take(&mut s, 100).unwrap();
                s
            })
            .collect();
        let mut e = budget.share("e".into());
        let why = refused(budget.take(&mut e, 1));
        assert!(why.contains("all clients' bodies"), "{why}");
        assert!(why.contains("400 bytes"), "{why}");
        // A refused take leaves nothing counted: once one share is given back, e fits.
        others.pop();
        budget.take(&mut e, 100).unwrap();
        // Dropping a share gives back all it took, to the budget and to its certificate.
        drop(a);
        drop(a2);
        let mut a3 = budget.share("a".into());
        budget.take(&mut a3, 100).unwrap();
        assert_eq!(budget.bytes.available_permits(), 0);
        drop((a3, e, others));
        assert_eq!(budget.bytes.available_permits(), 400);
        assert!(budget.held.lock().unwrap().is_empty());
    }

    #[test]
    fn one_body_of_the_largest_size_and_its_parsed_values_fit_a_certificates_share() {
        let budget = BodyBudget::new(400, 100);
        let mut a = budget.share("a".into());
        budget.take(&mut a, 100).unwrap();
        budget.take_parsed(&mut a, 100).unwrap();
        // Values past a whole share are refused for good, not as busy.
        let mut b = budget.share("b".into());
        let why = budget.take_parsed(&mut b, 201).unwrap_err();
        assert!(matches!(why, Refusal::BadRequest(_)), "{why}");
        assert!(budget.held.lock().unwrap().get("b").is_none());
    }
}
