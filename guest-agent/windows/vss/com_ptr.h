// ComPtr<T>: owns one COM interface pointer (Release on reset and destruction). Shared by the
// two COM translation units (vss_com.cc, provider_registration_com.cc); include it after the
// Windows / COM headers those files bring in.
#pragma once

namespace qb::agent::win {

template <typename T>
class ComPtr {
 public:
  ComPtr() = default;
  ~ComPtr() { Reset(); }
  ComPtr(const ComPtr&) = delete;
  ComPtr& operator=(const ComPtr&) = delete;
  T* operator->() const { return p_; }
  T* get() const { return p_; }
  T** put() {
    Reset();
    return &p_;
  }
  explicit operator bool() const { return p_ != nullptr; }
  void Reset() {
    if (p_) p_->Release();
    p_ = nullptr;
  }

 private:
  T* p_ = nullptr;
};

}  // namespace qb::agent::win
