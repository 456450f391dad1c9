/*
 * RAllocator slab protocol: a Promela model of spec/protocol.md (the protocol as built).
 *
 * Actors: N working nodes (proctype Node) and the blade agent with blade crash and restart recovery
 * (proctype Agent). A monitor (proctype Quiescence) checks "no permanent leak" once all work is done.
 *
 * Blade words that a crash can lose have two copies: <word>_v (what verbs and the agent see) and
 * <word>_p (the persistence domain). A blade crash keeps, for every word whose copies differ, either the
 * volatile value (the line was evicted) or the persisted one (lost), nondeterministically: the
 * "any subset of unflushed lines" rule of the simulated NVM. Words written and persisted in one step by
 * their only writer, or changed under the agent's redo intent (ownership table, applied marks, fill mark,
 * global epoch), have one copy: a crash leaves them either before or after the step.
 *
 * State and transition names are exactly those of AcquireState / AcquireTransition in
 * src/RAllocator.Protocol/SlabAcquisition.cs; tests/RAllocator.Spec.Tests checks that the lists agree and
 * that NEXT below only takes transitions of SlabAcquisitionMachine.
 *
 * Invariants (DESIGN.md), each an assert:
 *   [I1 no double allocation]  a slab is held by at most one node; the blade never rejects an ack or free.
 *   [I2 no permanent leak]     after blade recovery every slab is free or owned/freeing by a node that can
 *                              recover it; at quiescence every slab is free or ringed for an untaken ticket.
 *   [I3 durable ownership]     registration returns exactly the slabs the node holds (ghost `held`).
 *   [I4 safe reuse]            a slab is reclaimed only when no node can still hold a reference to it.
 *   [I5 CPU bypass]            a node whose ticket's entry was filled when it took the ticket completes
 *                              without waiting for the agent (never sees EntryNotFilled); the model has no
 *                              channel between nodes and the agent: every node step is a one-sided verb.
 *
 * Seeded bugs: compile with -DSEEDED_BUG=k (spin -DSEEDED_BUG=k -a ...); each must be caught.
 *   1  acknowledgement not persisted before use (PostAcknowledgement skips PERSIST)
 *   2  the agent releases a claimed ticket of an in-flight node (release rule ignores the in-flight bit)
 *   3  refill overwrites the entry of a taken, unresolved ticket (no slot-busy check)
 *   4  a freed slab is reused before its epoch has passed
 *   5  registration does not clear the stale claim (the bug the Coyote tests found)
 *   6  blade restart recovery does not apply durable acknowledgements before freeing ringed slabs
 */

#ifndef SEEDED_BUG
#define SEEDED_BUG 0
#endif

#define N      2     /* working nodes */
#define S      2     /* slabs */
#define R      2     /* ring capacity */
#define AS     2     /* acknowledgement slots per node */
#define FS     2     /* free-request slots per node */
#define K0     2     /* acquisitions of node 0 (over all its incarnations) */
#define K1     1     /* acquisitions of node 1 */
#define K(n)   ((n) == 0 -> K0 : K1)
#define READS  2     /* ring reads before GiveUp (RingReadRetryLimit) */
#define MAXFILL 2    /* BladeAgentOptions.MaxFillsPerPass */
#define MAXNC  1     /* working-node crashes */
#define MAXBC  1     /* blade crashes */
#define NONE   255

/* Slab states of the ownership table (SlabState). */
#define SFree    0
#define SRinged  1
#define SOwned   2
#define SFreeing 3

/* Ring entry kinds (RingEntryKind). */
#define EEmpty     0
#define ESlab      1
#define EExhausted 2

mtype:AcquireState = { Idle, Announced, TicketTaken, Claimed, EntryRead, SlabKnown, Owned, OutOfMemory, Abandoned };
mtype:AcquireTransition = { AnnounceAcquire, FetchTicket, PostClaim, ReadRingEntry, EntryMatches, EntryNotFilled,
                            EntryExhausted, PostAcknowledgement, GiveUp };

/* SlabAcquisitionMachine's table. */
#define LEGAL(f, t, x) ( \
     (f == Idle        && t == AnnounceAcquire     && x == Announced)   \
  || (f == Announced   && t == FetchTicket         && x == TicketTaken) \
  || (f == TicketTaken && t == PostClaim           && x == Claimed)     \
  || (f == Claimed     && t == ReadRingEntry       && x == EntryRead)   \
  || (f == EntryRead   && t == EntryMatches        && x == SlabKnown)   \
  || (f == EntryRead   && t == EntryNotFilled      && x == Claimed)     \
  || (f == EntryRead   && t == EntryExhausted      && x == OutOfMemory) \
  || (f == SlabKnown   && t == PostAcknowledgement && x == Owned)       \
  || (f == Claimed     && t == GiveUp              && x == Abandoned))

typedef Entry { byte kind; byte tk; byte slab };          /* ring word: kind | ticket tag | slab */
typedef Rec   { byte sq; byte slab; byte tk };            /* ack record (sequence, slab) + ticket; free: tk unused */
typedef Own   { byte st; byte node; byte gen; byte fe };  /* ownership entry: state, node, generation, freed epoch */
typedef Node4 { Rec r[AS] };

/* ---------------- blade NVM ---------------- */
byte  seq_v, seq_p;          /* sequencer: FETCH_AND_ADD on the volatile copy, persisted only by recovery */
Entry ring_v[R];             /* one copy: restart recovery clears the ring, so a lost entry never matters */
Own   own[S];                /* ownership table + bitmap, changed under a redo intent */
byte  fill;                  /* fill mark (FilledThroughTicket), persisted before the entries it covers */
byte  gep = 1;               /* global epoch, persisted on advance */
/* per node header */
byte  inc[N];                /* incarnation, persisted by registration */
byte  aqa_v[N], aqa_p[N];    /* AcquireState word: acquisition number ... */
bit   aqf_v[N], aqf_p[N];    /* ... and in-flight bit */
byte  cla_v[N], cla_p[N];    /* Claim word: acquisition number ... */
byte  clt_v[N], clt_p[N];    /* ... and ticket */
byte  pe_v[N];               /* published epoch (a crash may only lower it: the model keeps the newest) */
byte  acksApplied[N], freesApplied[N];   /* written and persisted by the agent */
Node4 ack_v[N], ack_p[N];    /* acknowledgement area */
Node4 fre[N];                /* free-request area (one WRITE+PERSIST batch; see README) */

/* ---------------- working nodes (node memory and ghosts) ---------------- */
mtype:AcquireState st[N];
hidden mtype:AcquireTransition via;   /* last transition, for traces */
bit   reg[N];                /* registered (connection usable) */
bit   down[N];               /* crashed, not yet restarted */
bit   needreg[N];            /* connection failed (blade restarted): must register again */
byte  acqno[N];              /* _acquisition */
byte  ackseq[N], freeseq[N]; /* _ackSequence, _freeSequence */
byte  tkt[N];                /* ticket of the acquisition in hand */
byte  slb[N];                /* slab read from the entry */
byte  reads[N];              /* ring reads of the acquisition in hand */
bit   pre[N];                /* ghost: the entry was filled for the ticket when the ticket was taken */
byte  attempts[N];           /* acquisitions started */
byte  held[N];               /* ghost: bit set of slabs the node owns and may use (survives its crash) */
byte  stale[N];              /* ghost: slabs the node freed and may still reference (until it publishes) */
byte  nc, bc;                /* crashes so far */

/* ---------------- agent memory ---------------- */
byte  apc;                   /* step of the pass in hand: 0 = between passes */
byte  sqs;                   /* sequencer read at step 1 */
byte  s_inc[N], s_aqa[N], s_cla[N], s_clt[N], s_pe[N];  /* node headers read at step 1 */
bit   s_aqf[N];
byte  k_inc[N];              /* NodeLiveness.Incarnation */
bit   expired[N];            /* NodeLiveness.Expired */
bit   over;                  /* the quiescence check ran: the run ends */

#define BIT(s)        (1 << (s))
#define LIVE(n)       (s_inc[n] != 0 && !expired[n])
#define ENTRY_FOR(e, t) (ring_v[e].kind != EEmpty && ring_v[e].tk == (t))

inline NEXT(n, t, x) {
  assert(LEGAL(st[n], t, x));
  via = t;
  st[n] = x
}

/* The node's acquisition ends: back to Idle, node memory of it cleared (keeps the state space small). */
inline END_ACQUISITION(n) {
  st[n] = Idle; tkt[n] = 0; slb[n] = 0; reads[n] = 0; pre[n] = 0
}

inline SET_OWN(s, a, b, c, d) {
  own[s].st = a; own[s].node = b; own[s].gen = c; own[s].fe = d
}

/* ---------------- the agent's rules (spec/protocol.md, "The blade agent") ---------------- */

/* Step 3: apply the node's acknowledgements (area words as they are now). */
inline DRAIN_ACKS(n) {
  q = acksApplied[n] + 1;
  do
  :: q <= acksApplied[n] + AS && ack_v[n].r[(q - 1) % AS].sq == q ->
       s = ack_v[n].r[(q - 1) % AS].slab;
       t = ack_v[n].r[(q - 1) % AS].tk;
       if
       :: own[s].st == SRinged && own[s].gen != t -> break   /* record still landing: retry next pass */
       :: own[s].st == SRinged && own[s].gen == t -> SET_OWN(s, SOwned, n, t, 0)
       :: else ->
            /* [I1] only a replay of an applied acknowledgement may find the slab not Ringed */
            assert(own[s].st == SOwned && own[s].node == n && own[s].gen == t)
       fi;
       acksApplied[n] = q;
       q++
  :: else -> break
  od;
  q = 0; s = 0; t = 0
}

/* Step 4: apply the node's free requests. */
inline DRAIN_FREES(n) {
  q2 = freesApplied[n] + 1;
  do
  :: q2 <= freesApplied[n] + FS && fre[n].r[(q2 - 1) % FS].sq == q2 ->
       s2 = fre[n].r[(q2 - 1) % FS].slab;
       if
       :: own[s2].st == SRinged -> DRAIN_ACKS(n)
       :: else -> skip
       fi;
       if
       :: own[s2].st == SRinged -> break      /* its acknowledgement is not applicable yet */
       :: own[s2].st == SOwned && own[s2].node == n -> SET_OWN(s2, SFreeing, n, own[s2].gen, gep)
       :: else -> assert(own[s2].st == SFreeing && own[s2].node == n)   /* [I1] replay only */
       fi;
       freesApplied[n] = q2;
       q2++
  :: else -> break
  od;
  q2 = 0; s2 = 0
}

/* Step 5: release the slabs of taken tickets nobody will acknowledge. */
inline RELEASE_ABANDONED() {
  someone = 0;
  for (i : 0 .. N - 1) {
    if
    :: LIVE(i) && s_aqf[i] && s_cla[i] != s_aqa[i] -> someone = 1
    :: else -> skip
    fi
  }
  for (s : 0 .. S - 1) {
    if
    :: own[s].st == SRinged && own[s].gen < sqs ->
         claimed = 0; mayack = 0;
         for (i : 0 .. N - 1) {
           if
           :: s_cla[i] == s_aqa[i] && s_cla[i] != 0 && s_clt[i] == own[s].gen && s_inc[i] != 0 ->
                claimed = 1;
                if
                :: s_aqf[i] && LIVE(i) -> mayack = 1
                :: else -> skip
                fi
           :: else -> skip
           fi
         }
#if SEEDED_BUG == 2
         mayack = 0; someone = 0;
#endif
         if
         :: mayack || (!claimed && someone) -> skip
         :: else -> SET_OWN(s, SFree, 0, 0, 0)
         fi
    :: else -> skip
    fi
  }
  i = 0; s = 0; claimed = 0; mayack = 0; someone = 0
}

/* A slab Ringed under ticket x (the agent's _ringedSlabByTicket). */
inline RINGED_FOR(x, res) {
  res = 0;
  for (j : 0 .. S - 1) {
    if
    :: own[j].st == SRinged && own[j].gen == x -> res = 1
    :: else -> skip
    fi
  }
  j = 0
}

/* Step 6a: plan the fill, persist the fill mark, then per entry: ringed under the intent, entry stored. */
inline REFILL() {
  t = fill; first = fill; planned = 0;
  do
  :: planned < MAXFILL && t < sqs + R ->
       busy = 0;
       if
       :: t >= R ->
            if
            :: t - R >= first -> busy = 1
            :: else -> RINGED_FOR(t - R, busy)
            fi
       :: else -> skip
       fi;
#if SEEDED_BUG == 3
       busy = 0;
#endif
       if
       :: busy -> break
       :: else -> skip
       fi;
       /* least worn free slab: the model takes the lowest free index (wear counters are hints) */
       s = NONE;
       for (j : 0 .. S - 1) {
         if
         :: s == NONE && own[j].st == SFree -> s = j
         :: else -> skip
         fi
       }
       j = 0;
       if
       :: s != NONE ->
            assert((stale[0] & BIT(s)) == 0 && (stale[1] & BIT(s)) == 0);   /* [I4] */
            SET_OWN(s, SRinged, 0, t, 0);
            ring_v[t % R].kind = ESlab; ring_v[t % R].tk = t; ring_v[t % R].slab = s;
            skip
       :: s == NONE && t < sqs ->
            ring_v[t % R].kind = EExhausted; ring_v[t % R].tk = t; ring_v[t % R].slab = 0;
            skip
       :: else -> break
       fi;
       planned++;
       t++
  :: else -> break
  od;
  fill = t;     /* persisted before the entries (their persists cannot matter: recovery clears the ring) */
  t = 0; first = 0; planned = 0; busy = 0; s = 0
}

/* Step 7: advance the epoch, reclaim freed slabs every live node has passed. */
inline EPOCH_AND_RECLAIM() {
  minp = gep; anylive = 0;
  for (i : 0 .. N - 1) {
    if
    :: LIVE(i) ->
         if
         :: !anylive || s_pe[i] < minp -> minp = s_pe[i]
         :: else -> skip
         fi;
         anylive = 1
    :: else -> skip
    fi
  }
  /* Model bound: advance only when a Freeing slab waits on the current epoch (otherwise it only renumbers). */
  waiting = 0;
  for (s : 0 .. S - 1) {
    if
    :: own[s].st == SFreeing && own[s].fe == gep -> waiting = 1
    :: else -> skip
    fi
  }
  if
  :: minp >= gep && waiting -> gep++
  :: else -> skip
  fi;
  for (s : 0 .. S - 1) {
    if
    :: own[s].st == SFreeing && (minp > own[s].fe || SEEDED_BUG == 4) ->
         /* [I4] safe reuse: no node may still reference a slab freed in an epoch not yet passed */
         assert((stale[0] & BIT(s)) == 0 && (stale[1] & BIT(s)) == 0);
         SET_OWN(s, SFree, 0, 0, 0)
    :: else -> skip
    fi
  }
  i = 0; s = 0; minp = 0; anylive = 0; waiting = 0
}

/* A crash keeps an unpersisted word (evicted) or loses it. */
#define LOSE(v, p) if :: p = v :: v = p fi

/* ---------------- blade crash and restart recovery (BladeImage.Open + BladeAgent.Start) ---------------- */
inline BLADE_CRASH() {
  bc++;
  /* The FETCH_AND_ADDs since the last recovery are lost (a newer surviving value only moves the jump below
     further; the lost one is the adversarial case). */
  seq_v = seq_p;
  for (i : 0 .. N - 1) {
    /* AcquireStateWord and ClaimWord are one 8-byte word each: kept or lost whole */
    if
    :: aqa_v[i] != aqa_p[i] || aqf_v[i] != aqf_p[i] ->
         if :: aqa_p[i] = aqa_v[i]; aqf_p[i] = aqf_v[i] :: aqa_v[i] = aqa_p[i]; aqf_v[i] = aqf_p[i] fi
    :: else -> skip
    fi;
    if
    :: cla_v[i] != cla_p[i] || clt_v[i] != clt_p[i] ->
         if :: cla_p[i] = cla_v[i]; clt_p[i] = clt_v[i] :: cla_v[i] = cla_p[i]; clt_v[i] = clt_p[i] fi
    :: else -> skip
    fi;
    for (j : 0 .. AS - 1) {
      if
      :: ack_v[i].r[j].sq != ack_p[i].r[j].sq || ack_v[i].r[j].slab != ack_p[i].r[j].slab || ack_v[i].r[j].tk != ack_p[i].r[j].tk ->
           if
           :: ack_p[i].r[j].sq = ack_v[i].r[j].sq; ack_p[i].r[j].slab = ack_v[i].r[j].slab; ack_p[i].r[j].tk = ack_v[i].r[j].tk
           :: ack_v[i].r[j].sq = ack_p[i].r[j].sq; ack_v[i].r[j].slab = ack_p[i].r[j].slab; ack_v[i].r[j].tk = ack_p[i].r[j].tk
           fi
      :: else -> skip
      fi
    }
    /* every connection dies with the blade: the node's acquisition in hand fails, it must register again */
    if
    :: reg[i] -> reg[i] = 0; needreg[i] = 1; END_ACQUISITION(i)
    :: else -> skip
    fi;
    /* the agent's memory is gone */
    s_inc[i] = 0; s_aqa[i] = 0; s_aqf[i] = 0; s_cla[i] = 0; s_clt[i] = 0; s_pe[i] = 0;
    k_inc[i] = inc[i]; expired[i] = 0
  }
  j = 0; i = 0; apc = 0; sqs = 0;

  /* BladeAgent.Start step 2: durable acknowledgements (and frees) of registered nodes first */
  for (i : 0 .. N - 1) {
    if
    :: inc[i] != 0 && SEEDED_BUG != 6 -> DRAIN_ACKS(i); DRAIN_FREES(i)
    :: else -> skip
    fi
  }
  i = 0;
  /* step 3: clear the ring (persisted), then free the Ringed slabs it named */
  for (j : 0 .. R - 1) {
    ring_v[j].kind = EEmpty; ring_v[j].tk = 0; ring_v[j].slab = 0
  }
  for (j : 0 .. S - 1) {
    if
    :: own[j].st == SRinged -> SET_OWN(j, SFree, 0, 0, 0)
    :: else -> skip
    fi
  }
  j = 0;
#if SEEDED_BUG == 6
  for (i : 0 .. N - 1) {
    if
    :: inc[i] != 0 -> DRAIN_ACKS(i); DRAIN_FREES(i)
    :: else -> skip
    fi
  }
  i = 0;
#endif
  /* step 4: move the sequencer past every ticket that can have been handed out */
  if
  :: seq_v < fill -> seq_v = fill
  :: else -> skip
  fi;
  seq_v = seq_v + R + N + 1;
  seq_p = seq_v;
  fill = seq_v;

  /* [I2] after recovery: every slab is free, or owned / being freed by a node that can recover it */
  for (j : 0 .. S - 1) {
    assert(own[j].st == SFree
        || (own[j].st == SOwned && (held[own[j].node] & BIT(j)) != 0)
        || own[j].st == SFreeing)
  }
  j = 0
}

inline READ_HEADERS() {
  for (i : 0 .. N - 1) {
    s_inc[i] = inc[i]; s_aqa[i] = aqa_v[i]; s_aqf[i] = aqf_v[i];
    s_cla[i] = cla_v[i]; s_clt[i] = clt_v[i]; s_pe[i] = pe_v[i];
    if
    :: inc[i] != k_inc[i] -> k_inc[i] = inc[i]; expired[i] = 0   /* a restarted node: its lease starts over */
    :: else -> skip
    fi
  }
  i = 0
}

inline END_PASS() {
  sqs = 0;
  for (i : 0 .. N - 1) { s_inc[i] = 0; s_aqa[i] = 0; s_aqf[i] = 0; s_cla[i] = 0; s_clt[i] = 0; s_pe[i] = 0 }
  i = 0; apc = 0
}

active proctype Agent() {
  byte i, j, s, t, q, s2, q2, first, planned, minp;
  bit someone, claimed, mayack, busy, anylive, waiting;
end_agent:
  do
  :: d_step { !over && apc == 0 ->                        /* step 1: the sequencer, then (next) the headers */
       sqs = seq_v; apc = 1 }
  :: atomic { !over && apc == 1 ->
       /* step 2, liveness, at the header read: the lease of a crashed node may expire (its heartbeat stopped).
          A live node is assumed to beat within its lease; a slow node that is fenced at this point (its
          registration revoked before the drains, so none of its writes lands after) is a crashed one. */
       for (i : 0 .. N - 1) {
         if
         :: down[i] && inc[i] != 0 && inc[i] == k_inc[i] && !expired[i] -> if :: expired[i] = 1 :: skip fi
         :: else -> skip
         fi
       }
       READ_HEADERS();
       for (i : 0 .. N - 1) {                             /* steps 3 and 4: drain the areas */
         if
         :: s_inc[i] != 0 -> DRAIN_ACKS(i); DRAIN_FREES(i)
         :: else -> skip
         fi
       }
       i = 0; apc = 2 }
  :: d_step { !over && apc == 2 ->                        /* steps 5, 6 and 7: on the agent's own words */
       RELEASE_ABANDONED();
       REFILL();
       EPOCH_AND_RECLAIM();
       END_PASS() }
  :: atomic { !over && bc < MAXBC -> BLADE_CRASH() }      /* at any point of a pass */

  od
}

/* ---------------- working node ---------------- */

/* BladeClient.RegisterAsync: a new incarnation; returns the slabs the node durably owns. */
inline REGISTER(n) {
  /* sequence numbers resume after the last record written, applied or not */
  ackseq[n] = acksApplied[n];
  do
  :: ackseq[n] < acksApplied[n] + AS && ack_v[n].r[ackseq[n] % AS].sq == ackseq[n] + 1 -> ackseq[n]++
  :: else -> break
  od;
  freeseq[n] = freesApplied[n];
  do
  :: freeseq[n] < freesApplied[n] + FS && fre[n].r[freeseq[n] % FS].sq == freeseq[n] + 1 -> freeseq[n]++
  :: else -> break
  od;
  acqno[n] = aqa_v[n];
  /* one persisted write: epoch, incarnation, not in flight, no claim */
  inc[n]++;
  pe_v[n] = gep;
  aqa_v[n] = acqno[n]; aqa_p[n] = acqno[n]; aqf_v[n] = 0; aqf_p[n] = 0;
#if SEEDED_BUG != 5
  cla_v[n] = 0; cla_p[n] = 0; clt_v[n] = 0; clt_p[n] = 0;
#endif
  /* Owned(n) entries, plus pending acknowledgements of slabs still Ringed under the ticket, minus pending frees */
  rec = 0;
  for (s : 0 .. S - 1) {
    if
    :: own[s].st == SOwned && own[s].node == n -> rec = rec | BIT(s)
    :: else -> skip
    fi
  }
  for (q : acksApplied[n] + 1 .. ackseq[n]) {
    s = ack_v[n].r[(q - 1) % AS].slab;
    if
    :: own[s].st == SRinged && own[s].gen == ack_v[n].r[(q - 1) % AS].tk -> rec = rec | BIT(s)
    :: else -> skip
    fi
  }
  for (q : freesApplied[n] + 1 .. freeseq[n]) {
    rec = rec & ~BIT(fre[n].r[(q - 1) % FS].slab)
  }
  /* [I3] durable ownership: exactly the slabs the node owned */
  assert(rec == held[n]);
  reg[n] = 1; needreg[n] = 0; down[n] = 0;
#ifndef REREGISTER_KEEPS_GUARDS
  /* Registration happens when a heap opens (WorkingNodeHeap.OpenAsync): no guard of an earlier heap instance
     is open, so the node holds no reference to a slab it freed before. With -DREREGISTER_KEEPS_GUARDS a node
     re-registers with guards still open, and spin shows the reuse that follows (see README, findings). */
  stale[n] = 0;
#endif
  s = 0; q = 0; rec = 0
}

proctype Node(byte n) {
  byte s, q, rec, e;
end_node:
  do
  /* --- registration: at start, after a crash, after the blade restarted --- */
  :: d_step { !over && !reg[n] && (down[n] || needreg[n] || inc[n] == 0) -> REGISTER(n) }

  /* --- slab acquisition (BladeClient.AcquireSlabAsync) --- */
  :: d_step { !over && reg[n] && st[n] == Idle && attempts[n] < K(n) ->
       attempts[n]++;
       acqno[n]++;
       aqa_v[n] = acqno[n]; aqf_v[n] = 1;                 /* WRITE AcquireState = (k, in flight), unsignaled */
       NEXT(n, AnnounceAcquire, Announced) }
  :: d_step { !over && reg[n] && st[n] == Announced ->
       tkt[n] = seq_v; seq_v++;                           /* FETCH_AND_ADD: round trip 1 */
       pre[n] = ENTRY_FOR(tkt[n] % R, tkt[n]);
       NEXT(n, FetchTicket, TicketTaken) }
  :: d_step { !over && reg[n] && st[n] == TicketTaken ->
       cla_v[n] = acqno[n]; clt_v[n] = tkt[n];           /* WRITE Claim = (k, ticket), unsignaled */
       NEXT(n, PostClaim, Claimed) }
  :: d_step { !over && reg[n] && st[n] == Claimed && reads[n] < READS ->
       reads[n]++;
       e = tkt[n] % R;                                    /* READ ring[ticket mod capacity]: round trip 2 */
       NEXT(n, ReadRingEntry, EntryRead);
       if
       :: ENTRY_FOR(e, tkt[n]) && ring_v[e].kind == ESlab ->
            slb[n] = ring_v[e].slab;
            NEXT(n, EntryMatches, SlabKnown)
       :: ENTRY_FOR(e, tkt[n]) && ring_v[e].kind == EExhausted ->
            NEXT(n, EntryExhausted, OutOfMemory);
            aqf_v[n] = 0;                                 /* WRITE AcquireState = (k, done) */
            END_ACQUISITION(n)
       :: else ->
            assert(!pre[n]);                              /* [I5] a pre-filled entry needs no agent */
            NEXT(n, EntryNotFilled, Claimed)
       fi;
       e = 0 }
  :: d_step { !over && reg[n] && st[n] == Claimed && reads[n] == READS ->
       NEXT(n, GiveUp, Abandoned);
       aqf_v[n] = 0;                                      /* done, claim left naming the ticket, no ack */
       END_ACQUISITION(n) }
  :: d_step { !over && reg[n] && st[n] == SlabKnown ->
       /* one posted batch: WRITE ack record, PERSIST it, WRITE AcquireState = (k, done) */
       ackseq[n]++;
       e = (ackseq[n] - 1) % AS;
       ack_v[n].r[e].sq = ackseq[n]; ack_v[n].r[e].slab = slb[n]; ack_v[n].r[e].tk = tkt[n];
#if SEEDED_BUG != 1
       ack_p[n].r[e].sq = ackseq[n]; ack_p[n].r[e].slab = slb[n]; ack_p[n].r[e].tk = tkt[n];
#endif
       aqf_v[n] = 0;
       NEXT(n, PostAcknowledgement, Owned);
       /* [I1] no double allocation: nobody else holds the slab the node now uses */
       assert((held[1 - n] & BIT(slb[n])) == 0 && (held[n] & BIT(slb[n])) == 0);
       held[n] = held[n] | BIT(slb[n]);
       e = 0;
       END_ACQUISITION(n) }

  /* --- free (BladeClient.ReturnSlabAsync): WRITE + PERSIST of the request, one posted batch --- */
  :: atomic { !over && reg[n] && held[n] != 0 ->
       if
       :: (held[n] & 1) != 0 -> s = 0
       :: (held[n] & 2) != 0 -> s = 1
       fi;
       freeseq[n]++;
       e = (freeseq[n] - 1) % FS;
       fre[n].r[e].sq = freeseq[n]; fre[n].r[e].slab = s;
       held[n] = held[n] & ~BIT(s);
       stale[n] = stale[n] | BIT(s);                      /* a guard may still reference it */
       s = 0; e = 0 }

  /* --- epoch publication (guards closed): WRITE published epoch, not persisted --- */
  :: d_step { !over && reg[n] && (pe_v[n] != gep || stale[n] != 0) ->
       pe_v[n] = gep; stale[n] = 0 }

  /* --- crash: node memory lost; the blade's words stay --- */
  :: d_step { !over && reg[n] && nc < MAXNC ->
       nc++; reg[n] = 0; down[n] = 1; stale[n] = 0;
       END_ACQUISITION(n) }
  od
}

/* [I2] no permanent leak. Once every node has done its work and returned its slabs, and the agent is between
   passes, the monitor runs PASSES further agent passes (the nodes publishing the epoch between them, as they
   keep doing while idle) and checks that every slab is then free or sits in the ring for a ticket nobody has
   taken. Then the run ends (over). */
#define PASSES 4
active proctype Quiescence() {
  byte i, j, s, t, q, s2, q2, first, planned, minp, p;
  bit someone, claimed, mayack, busy, anylive, waiting;
  d_step {
    !over && apc == 0 &&
    reg[0] && attempts[0] == K0 && held[0] == 0 && st[0] == Idle &&
    reg[1] && attempts[1] == K1 && held[1] == 0 && st[1] == Idle ->
    for (p : 1 .. PASSES) {
      for (i : 0 .. N - 1) { pe_v[i] = gep; stale[i] = 0 }
      sqs = seq_v;
      READ_HEADERS();
      for (i : 0 .. N - 1) {
        if
        :: s_inc[i] != 0 -> DRAIN_ACKS(i); DRAIN_FREES(i)
        :: else -> skip
        fi
      }
      i = 0;
      RELEASE_ABANDONED();
      REFILL();
      EPOCH_AND_RECLAIM();
      END_PASS()
    }
    for (j : 0 .. S - 1) {
      assert(own[j].st == SFree
          || (own[j].st == SRinged && own[j].gen >= seq_v
              && ring_v[own[j].gen % R].kind == ESlab && ring_v[own[j].gen % R].tk == own[j].gen
              && ring_v[own[j].gen % R].slab == j))
    }
    over = 1
  }
}

init {
  atomic {
    run Node(0);
    run Node(1)
  }
}
