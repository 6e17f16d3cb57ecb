// Message codec: plain values (protocol/messages.h, control_messages.h) <-> frame payloads.
//
// Decoding is the trust boundary for guest bytes. Every Decode* catches Cap'n Proto's
// exceptions and returns kProtocolError instead; it bounds the work done (traversal and
// nesting limits) and every text and list it copies (CodecLimits), so a hostile payload can
// cost at most a bounded amount of CPU and memory and never reaches the caller half-read.
// Every decoded text is valid UTF-8: invalid sequences become U+FFFD (a message is never
// rejected for its encoding; common/guest_text.h). Escaping for display is the sinks' job.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "protocol/control_messages.h"
#include "protocol/messages.h"

namespace qb::proto {

struct CodecLimits {
  std::size_t max_payload = 1 << 20;      // bytes (matches the frame limit)
  std::size_t max_text = 16 * 1024;       // any single text field but the two below
  std::size_t max_output = 64 * 1024;     // WriterResult.output
  std::size_t max_document = 512 * 1024;  // Thawed.backupComponentsDocument
  std::size_t max_list = 4096;            // elements in any list
  std::size_t max_job_id = 64;            // bytes in a job id
  int nesting_limit = 16;                 // Cap'n Proto pointer nesting
};

std::vector<std::uint8_t> EncodeAgent(const AgentMessage& message);
Result<AgentMessage> DecodeAgent(std::span<const std::uint8_t> payload,
                                 const CodecLimits& limits = {});

std::vector<std::uint8_t> EncodeControlRequest(const ControlRequest& message);
Result<ControlRequest> DecodeControlRequest(std::span<const std::uint8_t> payload,
                                            const CodecLimits& limits = {});
std::vector<std::uint8_t> EncodeControlReply(const ControlReply& message);
Result<ControlReply> DecodeControlReply(std::span<const std::uint8_t> payload,
                                        const CodecLimits& limits = {});

// The encoded size in bytes of a ControlReply carrying only `entry` (in a one-element list
// for list verbs). A list reply is never larger than the sum of its entries' sizes, so reply
// builders use it to keep a reply under kControlReplyByteBudget.
std::size_t EncodedReplyBytes(const JobReport& entry);
std::size_t EncodedReplyBytes(const SnapshotInfo& entry);

// Protocol version check the agent applies to a Hello and the daemon to a HelloReply:
// the same major is required; any minor is accepted (newer minors only add fields).
Status CheckProtocolVersion(std::uint16_t peer_major, std::uint16_t peer_minor);

}  // namespace qb::proto
