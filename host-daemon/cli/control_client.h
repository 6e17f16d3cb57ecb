// quiescectl's side of the control socket: one request, one reply.
#pragma once

#include <chrono>
#include <string>

#include "common/status.h"
#include "protocol/control_messages.h"

namespace qb::cli {

// Connects to the control socket at `socket_path`, sends `request` and returns the reply with
// the same request id. Blocks the calling thread for at most `wait` (plus connect time).
// Every failure is reported at once, never as a wait for "no answer":
//   kIoError "cannot connect to PATH: ..."          the daemon is not there;
//   kIoError "quiesced went away before answering"  the connection closed (or broke) before
//       the reply: the daemon died or stopped. The request may or may not have been carried
//       out; for a snapshot the message says the outcome is unknown and to check `jobs`;
//   kProtocolError "quiesced sent a reply that cannot be read: ..."  a reply frame that does
//       not decode, is over the size limit or fails its CRC;
//   kTimeout "no answer from quiesced"               nothing within `wait`.
// None of these is a guest's failure (kGuestUnreachable comes only inside a reply).
Result<proto::ControlReply> Ask(const std::string& socket_path,
                                const proto::ControlRequest& request,
                                std::chrono::steady_clock::duration wait);

}  // namespace qb::cli
