# Test only: the agent Envelope as a future protocol 1.1 might define it, with new fields in
# Hello. Layout of every existing field is identical (same ordinals and types), which is exactly
# the compatibility rule of agent.capnp. Used by golden_test.cc to prove an older reader accepts
# a newer minor version.

@0xd60087e91592dab5;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("qb::wire::agent_next");

using Agent = import "/protocol/agent.capnp";

struct Envelope {
  requestId @0 :UInt64;
  nonce @1 :UInt64;
  body :union {
    hello @2 :HelloNext;
    helloReply @3 :Agent.HelloReply;
    inventoryRequest @4 :Void;
    inventory @5 :Agent.Inventory;
    freeze @6 :Agent.Freeze;
    frozen @7 :Agent.Frozen;
    thaw @8 :Agent.Thaw;
    thawed @9 :Agent.Thawed;
    statusRequest @10 :Void;
    status @11 :Agent.Status;
    ping @12 :Void;
    pong @13 :Agent.Pong;
    error @14 :Agent.Error;
    futureRequest @15 :Text;  # a message type this build does not know
  }
}

struct HelloNext {
  protocolMajor @0 :UInt16;
  protocolMinor @1 :UInt16;
  daemonVersion @2 :Text;
  hostName @3 :Text;
  featureFlags @4 :UInt64;   # new in "1.1"
  newText @5 :Text;          # new in "1.1"
}
