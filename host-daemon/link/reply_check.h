// Validation of agent replies. The guest is untrusted (DESIGN.md invariant 4): a reply is used
// only after it has been checked against the request it answers. Sizes are already bounded by
// the codec (protocol/codec.h); these checks are about meaning.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "protocol/messages.h"

namespace qb::link {

// The qb::Status an agent ErrorReply stands for, message prefixed "agent: <code>: ".
Status StatusFromAgentError(const proto::ErrorReply& error);

// `reply` must be a Frozen for `request.job_id` whose frozen and skipped volumes are among
// those requested (every requested volume appears exactly once in one of the two lists), whose
// lease does not exceed the one asked for (when one was asked for). An ErrorReply becomes its
// Status; anything else is kProtocolError.
Result<proto::Frozen> CheckFrozen(const proto::AgentMessage& reply, const proto::Freeze& request);

// `reply` must be a Thawed for `request.job_id`; its thawed volumes must be among
// `frozen_volumes` (empty: not checked). heldWholeWindow=true with a non-empty notHeldReason or
// leaseExpired is contradictory and rejected (kProtocolError): a lying verdict is never trusted.
Result<proto::Thawed> CheckThawed(const proto::AgentMessage& reply, const proto::Thaw& request,
                                  const std::vector<std::string>& frozen_volumes);

// `reply` must be a HelloReply with a compatible protocol version.
Result<proto::HelloReply> CheckHelloReply(const proto::AgentMessage& reply);

// `reply` must be an Inventory in which every volume's disks are listed disks and no disk or
// volume name repeats.
Result<proto::Inventory> CheckInventory(const proto::AgentMessage& reply);

// `reply` must be a Status (AgentStatus).
Result<proto::AgentStatus> CheckStatus(const proto::AgentMessage& reply);

}  // namespace qb::link
