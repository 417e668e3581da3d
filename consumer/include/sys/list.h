/*
 * Userland stand-in for the illumos <sys/list.h> (with <sys/list_impl.h>):
 * doubly linked lists threaded through a list_node_t inside each object,
 * with the illumos semantics (consumer/c/services.c): a list is a circular
 * chain through its own head node; list_head() and list_next() return the
 * object or NULL at the end; list_remove() clears the removed node; a
 * list_create()d list on zero-filled memory is empty.
 */
#ifndef _VMM_CONSUMER_SYS_LIST_H
#define	_VMM_CONSUMER_SYS_LIST_H

#include <sys/types.h>

typedef struct list_node {
	struct list_node	*list_next;
	struct list_node	*list_prev;
} list_node_t;

typedef struct list {
	size_t		list_size;
	size_t		list_offset;
	list_node_t	list_head;
} list_t;

extern void list_create(list_t *, size_t, size_t);
extern void list_destroy(list_t *);
extern void list_insert_tail(list_t *, void *);
extern void list_insert_head(list_t *, void *);
extern void list_remove(list_t *, void *);
extern void *list_head(list_t *);
extern void *list_tail(list_t *);
extern void *list_next(list_t *, void *);
extern void *list_prev(list_t *, void *);
extern int list_is_empty(list_t *);
extern int list_link_active(list_node_t *);

#endif /* _VMM_CONSUMER_SYS_LIST_H */
