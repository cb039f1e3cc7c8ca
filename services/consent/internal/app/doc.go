// Package app is the consent service's logic: linking a bank under a
// two-factor (SCA) challenge, the consent lifecycle RECEIVED → VALID →
// EXPIRED or REVOKED (or REJECTED), reconfirmation, consent decisions for
// data services, expiry warnings, revocations sent to banks, partner
// opt-ins, and each user's tamper-evident access log.
//
// It knows nothing of gRPC or SQL: transport calls it, and it reaches the
// database through [Store] and banks through [Banks]. Errors meant for the
// caller are apierr errors; anything else is an internal failure that the
// transport masks.
//
// # Reading a link
//
// A link's stored state lags the clock: a VALID link whose expire_time has
// passed reads as EXPIRED, and a RECEIVED link whose challenge has expired
// reads as REJECTED, everywhere, before the background sweep (Sweep)
// writes the change. See [Link.At].
//
// # Linking abuse
//
// Linking must not tell anyone which bank logins exist, nor let anyone try
// more codes than the bank allows. A login the bank does not know gets a
// decoy link ([Link.Decoy]), made and answered as a real one, whose
// challenge no code passes ([Service.CreateLink]). At most
// [Config.PendingLinkLimit] links per user and bank wait for verification,
// each CreateLink holding its place ([LinkStart]) before the bank is
// asked. A code takes its attempt in a transaction of its own before the
// bank is asked ([Service.VerifyLink]), and counts against the user's
// login at the bank across links ([ScaFailures]), which cools down at the
// limit. Logins are stored only as keyed hashes, and request fingerprints
// are keyed too ([Keys]).
//
// # Events
//
// What happens to a link or a partner opt-in that someone outside must
// hear of is written to the outbox in the transaction that makes the change
// ([Tx.AddExpiryWarning], [Tx.AddRevocation], [Tx.AddOptInEvent]), and the
// platform relays it to the bus: the expiry warning (consent.link.expiring)
// for the product, which may then ask the user to keep the link
// ([Service.ReconfirmLink]); the revocation (consent.link.revoked), from
// which the service's own worker tells the bank, again and again until the
// bank accepts ([Service.RunBankRevocations]); a partner opt-in made or
// revoked (consent.partner_opt_in.created, .revoked), for the product.
//
// # Partner opt-ins
//
// A partner (a payment provider, merchant or carrier; a client listed in
// [Config.Partners]) pushes data to users who opted in to it, and knows
// them only by the partner-scoped user id minted at the opt-in
// ([Service.CreatePartnerOptIn]): 128 random bits, unique to the opt-in, so
// two partners cannot tell they serve the same user and an opt-in made
// after a revocation gets a new id. A user holds at most one ACTIVE opt-in
// per partner, which a repeated create returns. The opt-in records the
// product the user opted in through; events about what the partner
// pushes go to that product. A service taking a push resolves the id
// ([Service.ResolvePartnerUser]) by partner and id together, so another
// partner's id reads as one never minted. Revoking
// ([Service.RevokePartnerOptIn]) is final; watchers hear of it like a link
// change, and consent.partner_opt_in.created and .revoked go to the
// outbox with the change. The id is never logged nor put in an event.
//
// # The access log hash chain
//
// Each user's access log is a chain: entry n carries previous_hash, the
// hash of entry n-1 (64 zeros for entry 1), and hash, the lowercase hex
// SHA-256 of the entry's canonical encoding (see [ChainHash]). Changing any
// field of an entry breaks its hash; removing an entry breaks the sequence
// (1, 2, 3, ... without gaps) and the next entry's previous_hash; removing the
// last entries is caught against the chain head the store keeps per user.
// The head is signed with a key the database does not hold ([HeadSigner]:
// a Vault Transit key), so someone who can write to the database, but not
// sign, cannot rewrite entries and recompute every hash and the head: the
// signature no longer matches. [Service.VerifyChain] checks all of it.
//
// A batch of appends signs its users' new heads in one request, in its
// transaction, but only where the head it extends is signed and verifies:
// signing on top of a head nobody vouched for would sign a rewritten chain
// at the user's next access. When signing fails (Vault down), the entries
// are committed all the same, since the access must not wait on Vault,
// and their heads stay behind their signatures;
// [Service.SignPendingHeads] signs them later, once it has checked each
// chain from its last signature. Entries may await their signature for
// [Config.HeadSignGrace]; older unsigned ones fail verification, and are
// not signed, so removing a signature does not turn a rewritten chain into
// a pending one. What a signature cannot show is a user's whole chain
// deleted, head and all, nor entries rewritten within the grace while
// their signature is pending.
//
// With [Config.HeadSignDelay] (the consent service's default), a batch
// commits its heads unsigned and a background signer signs them right
// after, those moved within the delay in one request, so no access waits
// for Vault and no transaction holds the database's write lock while Vault
// answers. It signs on the same terms: a head whose chain extends one
// signed or verified here (by this process's own appends, under the
// head's lock), or else one whose chain checks from its last signature as
// SignPendingHeads checks it. Between commit and signature the entries are
// pending like entries appended while Vault is down.
//
// Appends are durable before [Service.RecordAccess] returns, and cheap under
// load: entries from concurrent calls share one transaction (group commit),
// each user's appended in arrival order to its own chain; an entry whose
// caller gave up before its batch was written is left out.
package app
