/* Prints the layout of the libucp structs the C# bindings declare, one "name value" pair per line.
   Compiled and run by UcxLayoutTests against the installed headers. */
#include <stddef.h>
#include <stdio.h>
#include <ucp/api/ucp.h>
#include <ucs/type/status.h>

#define SIZE(t) printf("sizeof(%s) %zu\n", #t, sizeof(t))
#define OFFSET(t, f) printf("offsetof(%s,%s) %zu\n", #t, #f, offsetof(t, f))
#define VALUE(v) printf("%s %lld\n", #v, (long long)(v))

int main(void)
{
    SIZE(ucs_status_t);
    SIZE(ucp_params_t);
    OFFSET(ucp_params_t, field_mask);
    OFFSET(ucp_params_t, features);
    OFFSET(ucp_params_t, mt_workers_shared);
    OFFSET(ucp_params_t, name);

    SIZE(ucp_worker_params_t);
    OFFSET(ucp_worker_params_t, thread_mode);
    OFFSET(ucp_worker_params_t, events);
    OFFSET(ucp_worker_params_t, name);

    SIZE(ucp_ep_params_t);
    OFFSET(ucp_ep_params_t, address);
    OFFSET(ucp_ep_params_t, err_mode);
    OFFSET(ucp_ep_params_t, err_handler);
    OFFSET(ucp_ep_params_t, user_data);
    OFFSET(ucp_ep_params_t, flags);
    OFFSET(ucp_ep_params_t, name);

    SIZE(ucp_mem_map_params_t);
    OFFSET(ucp_mem_map_params_t, address);
    OFFSET(ucp_mem_map_params_t, length);
    OFFSET(ucp_mem_map_params_t, flags);
    OFFSET(ucp_mem_map_params_t, prot);
    OFFSET(ucp_mem_map_params_t, memory_type);

    SIZE(ucp_request_param_t);
    OFFSET(ucp_request_param_t, op_attr_mask);
    OFFSET(ucp_request_param_t, flags);
    OFFSET(ucp_request_param_t, request);
    OFFSET(ucp_request_param_t, cb);
    OFFSET(ucp_request_param_t, datatype);
    OFFSET(ucp_request_param_t, user_data);
    OFFSET(ucp_request_param_t, reply_buffer);
    OFFSET(ucp_request_param_t, memory_type);
    OFFSET(ucp_request_param_t, recv_info);
    OFFSET(ucp_request_param_t, memh);

    VALUE(UCP_API_MAJOR);
    VALUE(UCP_API_MINOR);
    VALUE(UCS_OK);
    VALUE(UCS_INPROGRESS);
    VALUE(UCS_ERR_BUSY);
    VALUE(UCS_ERR_CANCELED);
    VALUE(UCS_ERR_LAST);
    VALUE(ucp_dt_make_contig(8));
    VALUE(UCP_FEATURE_RMA);
    VALUE(UCP_FEATURE_AMO64);
    VALUE(UCP_FEATURE_WAKEUP);
    VALUE(UCS_THREAD_MODE_SERIALIZED);
    VALUE(UCP_ERR_HANDLING_MODE_PEER);
    VALUE(UCP_ATOMIC_OP_ADD);
    VALUE(UCP_ATOMIC_OP_CSWAP);
    VALUE(UCP_EP_CLOSE_FLAG_FORCE);
    VALUE(UCS_MEMORY_TYPE_HOST);
    VALUE(UCP_MEM_MAP_PARAM_FIELD_PROT);
    VALUE(UCP_MEM_MAP_PROT_LOCAL_READ);
    VALUE(UCP_MEM_MAP_PROT_LOCAL_WRITE);
    VALUE(UCP_MEM_MAP_PROT_REMOTE_READ);
    VALUE(UCP_MEM_MAP_PROT_REMOTE_WRITE);
    return 0;
}
