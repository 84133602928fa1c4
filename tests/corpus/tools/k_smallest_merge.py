"""Merge sorted lists and pick the k smallest and largest values with heapq."""
import heapq


def k_smallest_merge(lists, k):
    """Return the merged sorted list plus k smallest/largest via heapq."""
    merged = list(heapq.merge(*lists))
    flat = [x for lst in lists for x in lst]
    heap = list(flat)
    heapq.heapify(heap)
    popped = [heapq.heappop(heap) for i in range(min(k, len(heap)))]
    return {"merged": merged, "smallest": heapq.nsmallest(k, flat),
            "largest": heapq.nlargest(k, flat), "popped": popped}
