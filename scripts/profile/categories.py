#!/usr/bin/env python3
# Each sample to one cost: walk its stack from the leaf up; the first frame that names a category wins.
import sys, re, collections
CATS=[
 ('malloc/free (glibc)', r'^(_int_malloc|_int_free|malloc|cfree|free|realloc|calloc|malloc_consolidate|unlink_chunk|__libc_|_int_realloc|tcache)'),
 ('memcpy/memmove/memcmp', r'^__mem(move|cpy|cmp|set)'),
 ('RocksDB (memtable, WAL, get)', r'rocksdb::|^rocksdb_'),
 ('HTTP/2 framing + HPACK (h2)', r'^(<)?h2::'),
 ('hyper', r'^(<)?hyper(_util)?::'),
 ('tonic/tower (codec, routing)', r'^(<)?(tonic|tower|tower_http|tonic_prost)::'),
 ('prost encode/decode', r'^(<)?prost::'),
 ('tracing + OpenTelemetry', r'^(<)?(tracing|tracing_core|tracing_subscriber|tracing_opentelemetry|opentelemetry|opentelemetry_sdk)::'),
 ('metrics', r'^(<)?(metrics|metrics_exporter_prometheus|metrics_util)::'),
 ('geokv own code', r'^(<)?(geokv|geokv_client)::'),
 ('tokio runtime (tasks, timers, channels, blocking pool)', r'^(<)?tokio::'),
 ('kernel: sockets (send/recv/writev/epoll)', r'(tcp_|sock_|__sys_(sendto|recvfrom)|vfs_writev|do_writev|ep_poll|__x64_sys_(writev|read|write|recvfrom|sendto|epoll))'),
 ('kernel: scheduler/futex (thread hand-offs)', r'(futex|schedule|finish_task_switch|__x64_sys_sched_yield|try_to_wake_up|_raw_spin)'),
]
tot=0; c=collections.Counter(); ex=collections.defaultdict(collections.Counter)
for line in open(sys.argv[1]):
    st,n=line.rstrip().rsplit(' ',1); n=int(n); tot+=n
    fr=st.split(';')[1:]
    for f in reversed(fr):
        hit=None
        for name,pat in CATS:
            if re.search(pat,f): hit=name; break
        if hit: c[hit]+=n; ex[hit][f]+=n; break
    else:
        c['other (kernel/unknown)']+=n; ex['other (kernel/unknown)'][fr[-1] if fr else '?']+=n
print('samples',tot)
for k,v in c.most_common():
    top=', '.join(f.split('<')[0][:50] for f,_ in ex[k].most_common(2))
    print('| %s | %.1f %% | %s |'%(k,100*v/tot,top))
